/**
 * How large an upstream connection's read buffer is (`http1_connection.ts`): the policy alone, pure, asked once per
 * read.
 */

/**
 * The read buffer a connection starts with (and gets back when parked): an answer's head, a stream event or a short
 * answer fits. A read that fills it grows the next; a stream's small reads shrink it (issue 22.4c: RSS per stream).
 */
export const FIRST_READ_BYTES = 2 * 1024;
/** A read that fills the buffer doubles the next one, up to this: a large answer still takes few reads. */
export const READ_BYTES = 16 * 1024;
/**
 * After `SHRINK_AFTER` reads in a row that each took at most a `ROOM_READS`th of the buffer (a stream's events), the
 * next buffer is halved while they still would, down to this: an open stream keeps 512 bytes to 1 KiB, not 2 or 16
 * KiB. Resized in place (`ArrayBuffer.transfer`): the larger buffer is released at once, where a new one would free
 * it only at V8's next full collection (the 1,000-stream peak read 1.5-2.6 MiB higher). Parked, one under 2 KiB grows back.
 * `ROOM_READS` reads fit: a busy process that finds two or three events in the socket reads them whole (with room
 * for three, a 260-byte chat event's buffer was 512 bytes, and a read of two cut the second: copies for the framer
 * and the mask, ~10 us, issue 22.3a).
 */
const MIN_READ_BYTES = 512;
const SHRINK_AFTER = 4;
export const ROOM_READS = 4;

/**
 * The next buffer's size after reads into one of `size` bytes: doubled after a read that `filled` it (up to
 * `READ_BYTES`); less after `small` small reads in a row, the `largest` of them still fitting `ROOM_READS` times.
 */
export function nextReadSize(size: number, filled: boolean, small: number, largest: number): number {
  if (filled) return size < READ_BYTES ? Math.min(size * 2, READ_BYTES) : size;
  if (small < SHRINK_AFTER || size <= MIN_READ_BYTES) return size;
  let next = size >> 1;
  while (next > MIN_READ_BYTES && largest * ROOM_READS <= next) next >>= 1;
  return Math.max(MIN_READ_BYTES, next);
}
