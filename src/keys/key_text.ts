/** The text of client keys: the keys a request presents, and the random part of a new key. */

import type { HeaderReader } from "../core/header_reader.ts";

/**
 * The subprotocol that carries a browser's key on a WebSocket upgrade (browsers cannot set headers there):
 * `Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.KEY`, as OpenAI's Realtime API takes it.
 */
export const PROTOCOL_KEY_PREFIX = "openai-insecure-api-key.";

/** The subprotocols a WebSocket upgrade offers, in order. */
export function offeredProtocols(headers: HeaderReader): string[] {
  const offered = headers.get("sec-websocket-protocol");
  if (offered === null) return [];
  return offered.split(",").map((protocol) => protocol.trim()).filter((protocol) => protocol !== "");
}

/**
 * The keys a request presents: the Bearer token, the `api-key` header and, on a WebSocket upgrade, the
 * `openai-insecure-api-key.` subprotocol, when present.
 */
export function presentedKeys(headers: HeaderReader): string[] {
  const keys: string[] = [];
  const authorization = headers.get("authorization");
  if (authorization !== null) {
    const match = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) keys.push(match[1]);
  }
  const apiKey = headers.get("api-key")?.trim();
  if (apiKey) keys.push(apiKey);
  if (headers.get("upgrade")?.toLowerCase() === "websocket") {
    for (const protocol of offeredProtocols(headers)) {
      if (protocol.startsWith(PROTOCOL_KEY_PREFIX) && protocol.length > PROTOCOL_KEY_PREFIX.length) {
        keys.push(protocol.slice(PROTOCOL_KEY_PREFIX.length));
      }
    }
  }
  return keys;
}

/** `bytes` random bytes as URL-safe base64 without padding. */
export function randomText(bytes: number): string {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...raw)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
