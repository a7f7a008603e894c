/** The text of client keys: the keys a request presents, and the random part of a new key. */

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

/** `bytes` random bytes as URL-safe base64 without padding. */
export function randomText(bytes: number): string {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...raw)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
