/**
 * Per-request cache control, from the body's `cache` object and the `Cache-Control` request header:
 *
 * - `no-cache`: do not answer from the cache (nor join an identical request in flight); do store the answer.
 * - `no-store`: do not store the answer; a cached one may still be served.
 * - `ttl` (body, seconds) / `max-age=N` (header): how long this answer stays cached; 0 means do not store.
 *
 * The body wins over the header where both set a ttl; the flags add up. A malformed body object is the
 * caller's error (400); unknown header directives are ignored, as HTTP caches do. Pure.
 */

import { invalidRequest } from "../errors.ts";

export interface CacheControl {
  /** Whether a cached answer (or an identical request in flight) may serve this request. */
  readonly read: boolean;
  /** Whether this request's answer may be stored. */
  readonly write: boolean;
  /** Seconds this request's answer stays cached; absent: the configured default. */
  readonly ttlSeconds?: number;
}

export const DEFAULT_CONTROL: CacheControl = Object.freeze({ read: true, write: true });

const BODY_FIELDS = ["no-cache", "no-store", "ttl"];

const typeName = (value: unknown) => value === null ? "null" : Array.isArray(value) ? "array" : typeof value;

export function parseCacheControl(bodyCache: unknown, header: string | null): CacheControl {
  const fromHeader = parseHeader(header);
  const fromBody = parseBody(bodyCache);
  const noCache = fromBody.noCache || fromHeader.noCache;
  const noStore = fromBody.noStore || fromHeader.noStore;
  const ttlSeconds = fromBody.ttlSeconds ?? fromHeader.ttlSeconds;
  if (!noCache && !noStore && ttlSeconds === undefined) return DEFAULT_CONTROL;
  return {
    read: !noCache,
    write: !noStore && ttlSeconds !== 0,
    ...(ttlSeconds !== undefined && ttlSeconds > 0 ? { ttlSeconds } : {}),
  };
}

interface Parts {
  noCache: boolean;
  noStore: boolean;
  ttlSeconds?: number;
}

function parseBody(value: unknown): Parts {
  if (value === undefined || value === null) return { noCache: false, noStore: false };
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalidRequest(`'cache' must be an object, got ${typeName(value)}`, "cache");
  }
  const cache = value as Record<string, unknown>;
  for (const field of Object.keys(cache)) {
    if (!BODY_FIELDS.includes(field)) {
      throw invalidRequest(
        `'cache.${field}' is not a cache control; known: ${
          BODY_FIELDS.map((name) => `'${name}'`).join(", ")
        }`,
        "cache",
      );
    }
  }
  const flag = (name: string): boolean => {
    const flagValue = cache[name];
    if (flagValue === undefined) return false;
    if (typeof flagValue !== "boolean") {
      throw invalidRequest(`'cache.${name}' must be a boolean, got ${typeName(flagValue)}`, `cache.${name}`);
    }
    return flagValue;
  };
  const ttl = cache.ttl;
  if (ttl !== undefined && (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl < 0)) {
    throw invalidRequest(
      `'cache.ttl' must be a number of seconds >= 0, got ${typeof ttl === "number" ? ttl : typeName(ttl)}`,
      "cache.ttl",
    );
  }
  return { noCache: flag("no-cache"), noStore: flag("no-store"), ttlSeconds: ttl };
}

function parseHeader(header: string | null): Parts {
  const parts: Parts = { noCache: false, noStore: false };
  if (!header) return parts;
  for (const raw of header.split(",")) {
    const directive = raw.trim().toLowerCase();
    if (directive === "no-cache") parts.noCache = true;
    else if (directive === "no-store") parts.noStore = true;
    else if (directive.startsWith("max-age=")) {
      const seconds = directive.slice("max-age=".length).replace(/^"(.*)"$/, "$1");
      if (/^\d+$/.test(seconds)) parts.ttlSeconds = Number(seconds);
    }
  }
  return parts;
}
