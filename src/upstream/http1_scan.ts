/**
 * Scans over an upstream connection's buffered bytes (`http1_connection.ts`): line ends, chunk-size lines, header
 * text. Pure: each takes the buffer and the range to look at.
 */

import { hexValue } from "./http1_wire.ts";
import { isAscii } from "../util/bytes.ts";

/** Decodes ASCII bytes only (where UTF-8 and Latin-1 agree). */
const asciiDecoder = new TextDecoder();

/** The offset of the first CRLF at or after `from` in `buffer[..end)`, or -1. */
export function indexOfCrlf(buffer: Uint8Array, from: number, end: number): number {
  const last = end - 1;
  for (let at = from; at < last; at++) {
    if (buffer[at] === 13 && buffer[at + 1] === 10) return at;
  }
  return -1;
}

/**
 * The size a chunk-size line `buffer[start..end)` (its CRLF left out) gives, or undefined if it is not one: up to 12
 * hex digits, optional blanks, then nothing or a `;` extension without a bare CR or LF.
 */
export function chunkSizeOf(buffer: Uint8Array, start: number, end: number): number | undefined {
  let at = start;
  let size = 0;
  for (; at < end && at - start < 12; at++) {
    const digit = hexValue(buffer[at]);
    if (digit < 0) break;
    size = size * 16 + digit;
  }
  if (at === start) return undefined;
  while (at < end && (buffer[at] === 32 || buffer[at] === 9)) at++;
  if (at === end) return size;
  if (buffer[at] !== 59) return undefined; // ';'
  for (at++; at < end; at++) if (buffer[at] === 13 || buffer[at] === 10) return undefined;
  return size;
}

/** The bytes as text, one char per byte (header bytes are Latin-1). */
export function latin1Text(bytes: Uint8Array): string {
  // An ASCII head (the usual one) is decoded natively: a third of the time, and no argument list of a char per byte.
  if (isAscii(bytes)) return asciiDecoder.decode(bytes);
  let text = "";
  for (let at = 0; at < bytes.length; at += 8192) {
    text += String.fromCharCode.apply(null, bytes.subarray(at, at + 8192) as unknown as number[]);
  }
  return text;
}
