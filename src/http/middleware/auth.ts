/**
 * Client and admin keys. With `api_keys` set, every route except `/health` and the `/ui` page (not its data) needs
 * a client key; with `admin_keys` set, `/stats`, `/metrics`, `/ui/data` and `DELETE /cache` need an admin key (an
 * admin key also works as a client key). A key comes in `Authorization: Bearer KEY` (OpenAI SDKs) or `api-key: KEY`
 * (Azure SDKs). With no keys configured, everything is open. Keys are compared as SHA-256 digests in constant time, and never logged or echoed.
 */

import { createHash } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { adminKeyRequired, invalidApiKey } from "../../errors.ts";

export interface AuthOptions {
  readonly apiKeys: readonly string[];
  readonly adminKeys: readonly string[];
}

/** Paths anyone may call (load balancer probes; the dashboard page, whose figures need an admin key). */
const OPEN_PATHS = new Set(["/health", "/v1/health", "/ui"]);
const isOpen = (path: string) => OPEN_PATHS.has(path) || path.startsWith("/ui/assets/");

/** Whether the request is for an operator route. */
export function isAdminRoute(method: string, path: string): boolean {
  const rest = path.startsWith("/v1/") ? path.slice(3) : path;
  if (rest === "/stats" || rest === "/metrics" || path === "/ui/data") return true;
  return rest === "/cache" && method === "DELETE";
}

/** SHA-256 of a key: equal lengths for the constant-time comparison, and no key text kept in memory. */
export const keyDigest = (key: string): Uint8Array => createHash("sha256").update(key).digest();

/** A set of keys kept only as digests; `has` costs the same whichever key (if any) matches. */
export class KeySet {
  readonly #digests: readonly Uint8Array[];

  constructor(keys: readonly string[]) {
    this.#digests = [...new Set(keys.filter((key) => key !== ""))].map(keyDigest);
  }

  get size(): number {
    return this.#digests.length;
  }

  /** Whether any of the presented key digests is in the set. */
  hasAny(candidates: readonly Uint8Array[]): boolean {
    let found = false;
    // Every pair is compared in full, so the time does not tell which key (if any) matched, nor how much of it.
    for (const candidate of candidates) {
      for (const known of this.#digests) found = sameDigest(known, candidate) || found;
    }
    return found;
  }
}

/** Constant-time equality of two SHA-256 digests (a plain loop: ~30x cheaper than node:crypto timingSafeEqual). */
function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  let difference = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

/** The keys a request presents: the Bearer token and the `api-key` header, when present. */
export function presentedKeys(headers: Headers): string[] {
  const keys: string[] = [];
  const authorization = headers.get("authorization");
  if (authorization !== null) {
    const match = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) keys.push(match[1]);
  }
  const apiKey = headers.get("api-key")?.trim();
  if (apiKey) keys.push(apiKey);
  return keys;
}

export function auth(options: AuthOptions): MiddlewareHandler {
  const clients = new KeySet(options.apiKeys);
  const admins = new KeySet(options.adminKeys);
  if (clients.size === 0 && admins.size === 0) return (_c, next) => next();
  return async (c, next) => {
    const path = c.req.path;
    if (isOpen(path)) return await next();
    const digests = presentedKeys(c.req.raw.headers).map(keyDigest);
    const admin = admins.hasAny(digests);
    if (isAdminRoute(c.req.method, path) && admins.size > 0) {
      if (!admin) throw adminKeyRequired(`${c.req.method} ${path}`);
    } else if (clients.size > 0 && !admin && !clients.hasAny(digests)) {
      throw invalidApiKey();
    }
    await next();
  };
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|\[::1\]|localhost)$/i;

/** The warning to log when the proxy listens beyond this machine with no client keys; undefined when it does not. */
export function openRelayWarning(hostname: string, apiKeys: readonly string[]): string | undefined {
  if (LOOPBACK.test(hostname) || apiKeys.length > 0) return undefined;
  return `SECURITY WARNING: listening on ${hostname} with no general_settings.api_keys: anyone who can reach this ` +
    "address can use your upstream API keys and spend their quota. Set api_keys (and admin_keys), or bind to " +
    "127.0.0.1 behind an authenticating reverse proxy.";
}
