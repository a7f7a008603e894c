/**
 * Masks the credentials sent to an upstream wherever they come back in its answer: an upstream that echoes the
 * request (a 400 quoting the headers, a debug body) must not hand the endpoint's key to the proxy's clients.
 * Each occurrence is overwritten with `*` of the same length, in bytes as they arrive or in header text.
 */

/** Shorter values are not treated as secrets: masking every `key` in a body would garble answers. */
export const MIN_SECRET_LENGTH = 8;

const STAR = 0x2a;
const encoder = new TextEncoder();

/**
 * How common a byte is in the JSON and SSE an upstream sends (lower is rarer): a secret is looked for by its rarest
 * byte, so a chunk is scanned with few false starts (an `s` of `sk-...` starts a dozen words per chat chunk).
 */
function commonness(byte: number): number {
  if (byte >= 97 && byte <= 122) return 3; // a-z
  if (byte >= 65 && byte <= 90) return 1; // A-Z
  if (byte === 95 || byte === 43 || byte === 47 || byte === 61) return 1; // _ + / =
  return 2; // digits, '-', '.', and the rest
}

/** A secret's bytes and where in it its rarest byte is. */
interface Needle {
  readonly bytes: Uint8Array;
  readonly anchor: number;
}

function needle(text: string): Needle {
  const bytes = encoder.encode(text);
  let anchor = 0;
  for (let at = 1; at < bytes.length; at++) {
    if (commonness(bytes[at]) < commonness(bytes[anchor])) anchor = at;
  }
  return { bytes, anchor };
}

export class SecretMask {
  readonly #needles: Needle[];
  readonly #bytes: Uint8Array[];
  readonly #texts: string[];
  /** 1 for each byte that some secret has before its last byte: only such a byte can end a secret's start. */
  readonly #startBytes = new Uint8Array(256);

  private constructor(texts: string[]) {
    this.#texts = texts;
    this.#needles = texts.map(needle);
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

  /** Overwrites every whole secret in `bytes` with stars, in place. */
  bytes(bytes: Uint8Array): void {
    for (const { bytes: secret, anchor } of this.#needles) {
      const length = secret.length;
      const key = secret[anchor];
      // Each place the anchor byte is found, the secret would start `anchor` bytes before it.
      let at = bytes.indexOf(key, anchor);
      while (at >= 0) {
        const start = at - anchor;
        if (start + length > bytes.length) break;
        let same = 0;
        while (same < length && bytes[start + same] === secret[same]) same++;
        if (same === length) {
          bytes.fill(STAR, start, start + length);
          at = bytes.indexOf(key, start + length + anchor);
        } else at = bytes.indexOf(key, at + 1);
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
