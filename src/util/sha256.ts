/**
 * SHA-256 (FIPS 180-4) of a string's UTF-8 bytes, as lowercase hex, computed synchronously in JavaScript: for the
 * cache key of an ordinary request, a client key's digest and an endpoint's id. `node:crypto` would load Deno's
 * Node compatibility layer at start (about 1.5 MiB of resident memory, issue 22); WebCrypto is only asynchronous.
 * Big inputs go to `crypto.subtle` instead (`cache/key.ts`): native code hashes them faster.
 */

// deno-fmt-ignore: the 64 round constants, eight to a line
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const INITIAL = [
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
];

const encoder = new TextEncoder();
const W = new Int32Array(64);
const H = new Int32Array(8);
/** The character codes of the hex digits. */
const DIGITS = Array.from("0123456789abcdef", (digit) => digit.charCodeAt(0));
/** The digest's 64 hex digits as character codes, made into one string at once (not 32 joined pieces). */
const HEX_CODES: number[] = new Array(64).fill(0);

/**
 * The padded message of every input that fits (a cache key's text, a client key): a new typed array per call cost
 * more than hashing a short text. Longer inputs get one of their own.
 */
const SCRATCH = new Uint8Array(4096);

/** The hex SHA-256 of `text` encoded as UTF-8. */
export function sha256Hex(text: string): string {
  // A UTF-16 unit is at most 3 UTF-8 bytes; room for the 0x80 byte and the 8-byte length, in whole 64-byte blocks.
  const room = paddedLength(text.length * 3);
  const padded = room <= SCRATCH.length ? SCRATCH : new Uint8Array(room);
  const { written } = encoder.encodeInto(text, padded);
  return sha256HexPadding(padded, written);
}

/** Bytes a message of `length` bytes takes once padded: the 0x80 byte and the 8-byte length, in 64-byte blocks. */
export const paddedLength = (length: number): number => (((length + 8) >> 6) + 1) * 64;

/**
 * The hex SHA-256 of the first `length` bytes of `bytes`, padded in place: the buffer must hold
 * `paddedLength(length)` bytes, and those past `length` are overwritten.
 */
export function sha256HexPadding(padded: Uint8Array, length: number): string {
  const end = paddedLength(length);
  padded.fill(0, length, end);
  padded[length] = 0x80;
  const high = Math.floor(length / 0x20000000);
  const low = (length << 3) >>> 0;
  for (let i = 0; i < 4; i++) {
    padded[end - 8 + i] = high >>> (24 - i * 8);
    padded[end - 4 + i] = low >>> (24 - i * 8);
  }
  H.set(INITIAL);
  for (let offset = 0; offset < end; offset += 64) compress(padded, offset);
  for (let i = 0; i < 8; i++) {
    const word = H[i];
    for (let digit = 0; digit < 8; digit++) {
      HEX_CODES[i * 8 + digit] = DIGITS[(word >>> (28 - digit * 4)) & 15];
    }
  }
  return String.fromCharCode.apply(null, HEX_CODES);
}

function compress(bytes: Uint8Array, offset: number): void {
  for (let t = 0, i = offset; t < 16; t++, i += 4) {
    W[t] = (bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3];
  }
  for (let t = 16; t < 64; t++) {
    const w15 = W[t - 15];
    const w2 = W[t - 2];
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
  }
  let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
  for (let t = 0; t < 64; t++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[t] + W[t]) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  H[0] += a;
  H[1] += b;
  H[2] += c;
  H[3] += d;
  H[4] += e;
  H[5] += f;
  H[6] += g;
  H[7] += h;
}
