/**
 * A cached answer and its stored form. Only complete 200 answers become entries: the body as text (checked to
 * be valid UTF-8, so it comes back byte for byte), the content type, whether it was a stream and where its
 * events begin and end, and which endpoint produced it. Stored as one string: a JSON line of metadata, then
 * the body unescaped, so an entry costs barely more than the answer.
 */

/** Every entry's store key starts with this, so dropping them all is one `deleteByPrefix`. */
export const CACHE_PREFIX = "cache:";

/**
 * The store key of the entry for a cache key. The key is in braces, a Redis Cluster hash tag: the entry and its
 * coalescing lock (`coalesce:{key}`) land in one slot, so one script reads the one and takes the other.
 */
export const entryKey = (key: string): string => `${CACHE_PREFIX}{${key}}`;

export interface CachedAnswer {
  readonly stream: boolean;
  readonly contentType: string;
  /** Id of the endpoint that produced the answer. */
  readonly endpoint: string | null;
  /** The body; for a stream, its events joined. */
  readonly body: string;
  /** A stream's events, as the lengths (in UTF-16 code units) of consecutive slices of `body`; else empty. */
  readonly events: readonly number[];
  /** Epoch milliseconds. */
  readonly storedAt: number;
}

interface Meta {
  v: 1;
  stream: boolean;
  contentType: string;
  endpoint: string | null;
  events: number[];
  storedAt: number;
}

/** The stored text of `answer`: its metadata line (`meta`, when the caller made it already), then its body. */
export function encodeEntry(answer: CachedAnswer, meta = entryMeta(answer)): string {
  return `${meta}\n${answer.body}`;
}

/** The first line of `encodeEntry`'s text: the answer's metadata as JSON. */
export function entryMeta(answer: CachedAnswer): string {
  const meta: Meta = {
    v: 1,
    stream: answer.stream,
    contentType: answer.contentType,
    endpoint: answer.endpoint,
    events: [...answer.events],
    storedAt: answer.storedAt,
  };
  return JSON.stringify(meta);
}

/** The answer in a stored string, or null when the string is not an entry this version wrote. */
export function decodeEntry(text: string): CachedAnswer | null {
  const newline = text.indexOf("\n");
  if (newline === -1) return null;
  let meta: Partial<Meta>;
  try {
    meta = JSON.parse(text.slice(0, newline));
  } catch {
    return null;
  }
  if (meta === null || typeof meta !== "object" || meta.v !== 1) return null;
  const body = text.slice(newline + 1);
  const events = Array.isArray(meta.events) ? meta.events : [];
  if (meta.stream === true && events.reduce((sum, length) => sum + length, 0) !== body.length) return null;
  return {
    stream: meta.stream === true,
    contentType: typeof meta.contentType === "string" ? meta.contentType : "application/json",
    endpoint: typeof meta.endpoint === "string" ? meta.endpoint : null,
    body,
    events,
    storedAt: typeof meta.storedAt === "number" ? meta.storedAt : 0,
  };
}

/** The events of a stored stream, as text, in order. */
export function eventsOf(answer: CachedAnswer): string[] {
  const out: string[] = [];
  let at = 0;
  for (const length of answer.events) {
    out.push(answer.body.slice(at, at + length));
    at += length;
  }
  return out;
}
