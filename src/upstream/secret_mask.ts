/**
 * Masks the credentials sent to an upstream wherever they come back in its answer: an upstream that echoes the
 * request (a 400 quoting the headers, a debug body) must not hand the endpoint's key to the proxy's clients.
 * Each occurrence is overwritten with `*` of the same length, in bytes as they arrive or in header text.
 */

import { BytePattern } from "../util/bytes.ts";

/** Shorter values are not treated as secrets: masking every `key` in a body would garble answers. */
export const MIN_SECRET_LENGTH = 8;

const STAR = 0x2a;
const encoder = new TextEncoder();

export class SecretMask {
  /** Searched for by a shift table (`BytePattern`): a stream's event is scanned in ~70 ns, not ~350 (22.3a). */
  readonly #needles: BytePattern[];
  readonly #bytes: Uint8Array[];
  readonly #texts: string[];
  /** 1 for each byte that some secret has before its last byte: only such a byte can end a secret's start. */
  readonly #startBytes = new Uint8Array(256);

  private constructor(texts: string[]) {
    this.#texts = texts;
    this.#needles = texts.map((text) => new BytePattern(encoder.encode(text)));
    this.#bytes = this.#needles.map((needle) => needle.bytes);
    for (const secret of this.#bytes) {
      for (let at = 0; at < secret.length - 1; at++) this.#startBytes[secret[at]] = 1;
    }
  }

  /** A mask for the given values, or undefined when none is long enough to be one. */
  static of(values: Iterable<string | undefined>): SecretMask | undefined {
    const texts = new Set<string>();
    for (const value of values) if (value && value.length >= MIN_SECRET_LENGTH) texts.add(value);
    // Longest first: a secret that contains another is masked whole.
    return texts.size === 0 ? undefined : new SecretMask([...texts].sort((a, b) => b.length - a.length));
  }

  /** The text with every secret replaced by stars. */
  text(text: string): string {
    const texts = this.#texts;
    for (let i = 0; i < texts.length; i++) {
      if (text.includes(texts[i])) text = text.replaceAll(texts[i], "*".repeat(texts[i].length));
    }
    return text;
  }

  /** Overwrites every whole secret in `bytes` with stars, in place (left to right, as `replaceAll` does). */
  bytes(bytes: Uint8Array): void {
    const needles = this.#needles;
    for (let n = 0; n < needles.length; n++) {
      const needle = needles[n];
      const length = needle.bytes.length;
      for (let at = needle.indexIn(bytes); at >= 0; at = needle.indexIn(bytes, at + length)) {
        bytes.fill(STAR, at, at + length);
      }
    }
  }

  /**
   * How many bytes at the end of `bytes` could be the start of a secret that the next chunk completes: a stream
   * holds those back until it knows.
   */
  pendingTail(bytes: Uint8Array): number {
    // A stream's chunk usually ends an event with a line break, which no secret holds: nothing to look for.
    if (bytes.length === 0 || this.#startBytes[bytes[bytes.length - 1]] === 0) return 0;
    let held = 0;
    for (const secret of this.#bytes) {
      for (let length = Math.min(secret.length - 1, bytes.length); length > held; length--) {
        const from = bytes.length - length;
        if (bytes[from] !== secret[0]) continue;
        let same = 1;
        while (same < length && bytes[from + same] === secret[same]) same++;
        if (same === length) {
          held = length;
          break;
        }
      }
    }
    return held;
  }
}
