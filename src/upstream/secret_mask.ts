/**
 * Masks the credentials sent to an upstream wherever they come back in its answer: an upstream that echoes the
 * request (a 400 quoting the headers, a debug body) must not hand the endpoint's key to the proxy's clients.
 * Each occurrence is overwritten with `*` of the same length, in bytes as they arrive or in header text.
 */

/** Shorter values are not treated as secrets: masking every `key` in a body would garble answers. */
export const MIN_SECRET_LENGTH = 8;

const STAR = 0x2a;
const encoder = new TextEncoder();

export class SecretMask {
  readonly #bytes: Uint8Array[];
  readonly #texts: string[];

  private constructor(texts: string[]) {
    this.#texts = texts;
    this.#bytes = texts.map((text) => encoder.encode(text));
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
    for (const secret of this.#texts) {
      if (text.includes(secret)) text = text.replaceAll(secret, "*".repeat(secret.length));
    }
    return text;
  }

  /** Overwrites every whole secret in `bytes` with stars, in place. */
  bytes(bytes: Uint8Array): void {
    for (const secret of this.#bytes) {
      const first = secret[0];
      const length = secret.length;
      let at = bytes.indexOf(first);
      while (at >= 0 && at + length <= bytes.length) {
        let same = 1;
        while (same < length && bytes[at + same] === secret[same]) same++;
        if (same === length) {
          bytes.fill(STAR, at, at + length);
          at = bytes.indexOf(first, at + length);
        } else at = bytes.indexOf(first, at + 1);
      }
    }
  }

  /**
   * How many bytes at the end of `bytes` could be the start of a secret that the next chunk completes: a stream
   * holds those back until it knows.
   */
  pendingTail(bytes: Uint8Array): number {
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
