/** Byte helpers shared by the readers that gather a body or a stream's pieces. */

/** `chunks` copied one after another into one new buffer of `length` bytes (their total length). */
export function joinBytes(chunks: readonly Uint8Array[], length: number): Uint8Array<ArrayBuffer> {
  const joined = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    joined.set(chunk, at);
    at += chunk.byteLength;
  }
  return joined;
}

/**
 * A byte string to look for in chunks as they pass (Horspool): a window whose last byte is not the pattern's moves
 * on by up to the pattern's length, so most windows cost one byte read and the search never leaves JavaScript. A
 * stream's 250-byte event is searched in ~70 ns, where `Uint8Array.prototype.indexOf` of one of the pattern's
 * bytes took ~100 ns a call, found (issue 22.3a).
 */
export class BytePattern {
  readonly bytes: Uint8Array;
  /** How far a window may move on when its last byte is a given byte (capped at 255: shorter only looks more). */
  readonly #shift = new Uint8Array(256);

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    const length = bytes.length;
    this.#shift.fill(Math.min(length, 255));
    for (let at = 0; at < length - 1; at++) this.#shift[bytes[at]] = Math.min(length - 1 - at, 255);
  }

  /** Where the pattern first occurs in `haystack` at or after `from`, or -1. */
  indexIn(haystack: Uint8Array, from = 0): number {
    const pattern = this.bytes;
    const shift = this.#shift;
    const last = pattern.length - 1;
    if (last < 0) return from <= haystack.length ? from : -1;
    const lastByte = pattern[last];
    const end = haystack.length;
    for (let at = from + last; at < end;) {
      const byte = haystack[at];
      if (byte === lastByte) {
        const start = at - last;
        let same = 0;
        while (same < last && haystack[start + same] === pattern[same]) same++;
        if (same === last) return start;
      }
      at += shift[byte];
    }
    return -1;
  }
}

/** Whether `bytes` begin with a UTF-8 byte-order mark (EF BB BF), which a decoder drops from the text. */
export function startsWithBom(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
}

/** No byte above 0x7f: text where UTF-8 and Latin-1 agree. */
export function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] > 0x7f) return false;
  return true;
}
