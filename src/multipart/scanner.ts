/**
 * A streaming `multipart/form-data` scanner: bytes in, events out, never holding more than one part head and a
 * delimiter's length of carry. Every event carries the exact input bytes it covers, so joining the `raw` of all
 * events gives the input back byte for byte: a pass-through that rewrites one field replaces only that field's data.
 *
 * ```ts
 * const scanner = new MultipartScanner(boundaryOf(contentType)!);
 * for (const event of scanner.push(chunk)) ...; scanner.finish();
 * ```
 */

import { invalidRequest } from "../errors.ts";

export type MultipartEvent =
  /** A part begins: its delimiter line and head. */
  | {
    readonly kind: "part";
    readonly name: string;
    /** Set for a file part. */
    readonly filename: string | null;
    readonly contentType: string | null;
    readonly raw: Uint8Array;
  }
  /** Bytes of the current part's content (a view: copy it to keep it). */
  | { readonly kind: "data"; readonly raw: Uint8Array }
  /** Bytes outside any part: the preamble, the closing delimiter and the epilogue. */
  | { readonly kind: "other"; readonly raw: Uint8Array };

/** Longest part head (delimiter line and headers) accepted. */
export const MAX_HEAD_BYTES = 16 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CR = 13;

/** The boundary of a `multipart/form-data` content type, or null when it is not one. */
export function boundaryOf(contentType: string | null): string | null {
  if (!contentType || !/^\s*multipart\/form-data\s*(;|$)/i.test(contentType)) return null;
  const match = /;\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  return match ? (match[1] ?? match[2]) : null;
}

type State = "preamble" | "delimiter" | "head" | "body" | "epilogue";

export class MultipartScanner {
  /** `\r\n--boundary`: what ends a part's content. */
  readonly #delimiter: Uint8Array;
  #state: State = "preamble";
  /** The bytes no event has covered yet: a view of a push's chunk, or of `#store`. */
  #buffer: Uint8Array = new Uint8Array(0);
  /** Where bytes held across pushes are gathered, with room to grow (doubled when full), so that a head sent a
   * byte per push costs its length to gather, not its square. Views handed out in events are never written to:
   * bytes are only added after the end of `#buffer`. */
  #store: Uint8Array = new Uint8Array(0);
  /** Bytes from `#buffer`'s start that the search for the end of a part head has looked at without finding it. */
  #searched = 0;

  /** For each byte value, how far the delimiter search may skip when it ends a window (Horspool). */
  readonly #skip: Uint16Array;
  /** Where a held carry and the next chunk's first bytes are joined to be searched. */
  readonly #scratch: Uint8Array;

  constructor(boundary: string) {
    this.#delimiter = encoder.encode(`\r\n--${boundary}`);
    this.#skip = skipTable(this.#delimiter);
    this.#scratch = new Uint8Array(2 * this.#delimiter.length);
  }

  /** The events the bytes so far complete. Throws a 400 `ProxyError` on a malformed body. */
  push(chunk: Uint8Array): MultipartEvent[] {
    const events: MultipartEvent[] = [];
    const held = this.#buffer;
    if (held.length === 0) this.#buffer = chunk;
    else if (this.#state === "body" && this.#noDelimiterFrom(held, chunk)) {
      // Content held back only because it might begin a delimiter, and does not: it goes, and the chunk is
      // scanned where it lies (not copied after it).
      events.push({ kind: "data", raw: held });
      this.#buffer = chunk;
    } else this.#buffer = this.#append(held, chunk);
    while (this.#step(events));
    // What is kept for the next push is copied out of the chunk: its reader may reuse that buffer.
    if (this.#buffer.length > 0 && this.#buffer.buffer === chunk.buffer) {
      this.#buffer = this.#append(new Uint8Array(0), this.#buffer);
    }
    return events;
  }

  /** The bytes held back for the next push, which no event has covered yet (kept: scanning goes on). */
  get held(): Uint8Array {
    return this.#buffer;
  }

  /** Stops scanning: the bytes held back for the next push, which no event has covered yet. */
  release(): Uint8Array {
    const rest = this.#buffer;
    this.#buffer = new Uint8Array(0) as Uint8Array;
    return rest;
  }

  /** Checks that the body ended after its closing delimiter; returns the last bytes held. */
  finish(): MultipartEvent[] {
    if (this.#state !== "epilogue") {
      throw invalidRequest("The multipart/form-data body ended before its closing boundary");
    }
    const rest = this.#buffer;
    this.#buffer = new Uint8Array(0) as Uint8Array;
    return rest.length > 0 ? [{ kind: "other", raw: rest }] : [];
  }

  /** Moves through the buffer as far as it can; true when it should be called again. */
  #step(events: MultipartEvent[]): boolean {
    const buffer = this.#buffer;
    switch (this.#state) {
      case "preamble": {
        // The first delimiter may open the body without the CRLF in front of it.
        const bare = this.#delimiter.subarray(2);
        if (startsWith(buffer, bare)) {
          this.#state = "delimiter";
          return true;
        }
        return this.#until(events, "other", "delimiter");
      }
      case "body":
        return this.#until(events, "data", "delimiter");
      case "delimiter":
      case "head":
        return this.#head(events);
      case "epilogue":
        if (buffer.length > 0) events.push({ kind: "other", raw: this.#take(buffer.length) });
        return false;
    }
  }

  /** Emits bytes up to the next delimiter as `kind`, keeping a possible partial delimiter at the end. */
  #until(events: MultipartEvent[], kind: "data" | "other", next: State): boolean {
    const buffer = this.#buffer;
    const at = findDelimiter(buffer, this.#delimiter, this.#skip);
    if (at >= 0) {
      if (at > 0) events.push({ kind, raw: this.#take(at) });
      this.#state = next;
      return true;
    }
    const safe = buffer.length - (this.#delimiter.length - 1);
    if (safe > 0) events.push({ kind, raw: this.#take(safe) });
    return false;
  }

  /** At a delimiter: the closing one, or a part's head up to its blank line. */
  #head(events: MultipartEvent[]): boolean {
    const buffer = this.#buffer;
    const start = buffer[0] === CR ? this.#delimiter.length : this.#delimiter.length - 2;
    if (buffer.length < start + 2) return false;
    if (buffer[start] === 45 && buffer[start + 1] === 45) { // "--": the closing delimiter
      this.#state = "epilogue";
      events.push({ kind: "other", raw: this.#take(start + 2) });
      return true;
    }
    const end = indexOf(buffer, HEAD_END, Math.max(start, this.#searched - (HEAD_END.length - 1)));
    if (end < 0) {
      if (buffer.length > MAX_HEAD_BYTES) throw invalidRequest("A multipart/form-data part head is too long");
      this.#searched = buffer.length;
      return false;
    }
    if (end + 4 > MAX_HEAD_BYTES) throw invalidRequest("A multipart/form-data part head is too long");
    const raw = this.#take(end + 4);
    const lines = decoder.decode(raw.subarray(start, end)).split("\r\n").slice(1);
    events.push({ kind: "part", ...partHeaders(lines), raw });
    this.#state = "body";
    return true;
  }

  #take(length: number): Uint8Array {
    const taken = this.#buffer.subarray(0, length);
    this.#buffer = this.#buffer.subarray(length);
    this.#searched = 0;
    return taken;
  }

  /** Whether no delimiter begins in `held` (a few bytes of content) when `chunk` follows it. */
  #noDelimiterFrom(held: Uint8Array, chunk: Uint8Array): boolean {
    const length = this.#delimiter.length;
    if (held.length >= length || chunk.length < length - 1) return false;
    const joined = this.#scratch;
    joined.set(held);
    joined.set(chunk.subarray(0, length - 1), held.length);
    const at = findDelimiter(joined.subarray(0, held.length + length - 1), this.#delimiter, this.#skip);
    return at < 0 || at >= held.length;
  }

  /** `held` followed by `chunk`, in `#store`: in place when `held` ends where the store's free room starts. */
  #append(held: Uint8Array, chunk: Uint8Array): Uint8Array {
    const store = this.#store;
    const start = held.byteOffset - store.byteOffset;
    const end = start + held.length + chunk.length;
    if (held.length > 0 && held.buffer === store.buffer && end <= store.length) {
      store.set(chunk, start + held.length);
      return store.subarray(start, end);
    }
    const grown = new Uint8Array(Math.max(256, 2 * (held.length + chunk.length)));
    grown.set(held);
    grown.set(chunk, held.length);
    this.#store = grown;
    return grown.subarray(0, held.length + chunk.length);
  }
}

const HEAD_END = encoder.encode("\r\n\r\n");

function partHeaders(lines: string[]): { name: string; filename: string | null; contentType: string | null } {
  let disposition = "";
  let contentType: string | null = null;
  for (const line of lines) {
    const colon = line.indexOf(":");
    const header = line.slice(0, colon).trim().toLowerCase();
    if (header === "content-disposition") disposition = line.slice(colon + 1);
    else if (header === "content-type") contentType = line.slice(colon + 1).trim();
  }
  const name = parameter(disposition, "name");
  if (name === null) {
    throw invalidRequest("A multipart/form-data part has no name in its Content-Disposition");
  }
  return { name, filename: parameter(disposition, "filename"), contentType };
}

function parameter(disposition: string, key: string): string | null {
  const match = new RegExp(`;\\s*${key}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^\\s;]+))`, "i").exec(
    disposition,
  );
  if (!match) return null;
  return match[1] !== undefined ? match[1].replace(/\\(.)/g, "$1") : match[2];
}

function startsWith(buffer: Uint8Array, prefix: Uint8Array): boolean {
  if (buffer.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buffer[i] !== prefix[i]) return false;
  return true;
}

/** First index of `pattern` in `buffer` at or after `from`; -1 when absent. */
export function indexOf(buffer: Uint8Array, pattern: Uint8Array, from = 0): number {
  const first = pattern[0];
  const last = buffer.length - pattern.length;
  let at = buffer.indexOf(first, from);
  while (at >= 0 && at <= last) {
    let i = 1;
    while (i < pattern.length && buffer[at + i] === pattern[i]) i++;
    if (i === pattern.length) return at;
    at = buffer.indexOf(first, at + 1);
  }
  return -1;
}

/** The skips of a Horspool search for `pattern`: its length, less for the bytes it contains. */
function skipTable(pattern: Uint8Array): Uint16Array {
  const skip = new Uint16Array(256).fill(pattern.length);
  for (let i = 0; i < pattern.length - 1; i++) skip[pattern[i]] = pattern.length - 1 - i;
  return skip;
}

/**
 * First index of `pattern` in `buffer`, a window at a time: a window's last byte decides how far the next one
 * starts (most bytes of a file are in no delimiter, so most windows move a whole delimiter on). Over binary
 * content, a search for the delimiter's first byte stops at every CR, one in 256 bytes.
 */
function findDelimiter(buffer: Uint8Array, pattern: Uint8Array, skip: Uint16Array): number {
  const last = pattern.length - 1;
  const end = pattern[last];
  for (let at = last; at < buffer.length; at += skip[buffer[at]]) {
    if (buffer[at] !== end) continue;
    let i = last - 1;
    while (i >= 0 && buffer[at - last + i] === pattern[i]) i--;
    if (i < 0) return at - last;
  }
  return -1;
}
