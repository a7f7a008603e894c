/**
 * One upstream socket of the proxy's HTTP/1.1 client (`http1.ts`) with its read buffer and parked reads (an
 * answer's head is read by `http1_head.ts`, its body by `http1_body.ts`).
 */

import { hexValue, UpstreamProtocolError } from "./http1_wire.ts";
import { idleRead, socketRead, wakeRead } from "./socket_read.ts";
import { slabCopyRange } from "./chunk_slab.ts";
import { isAscii } from "../util/bytes.ts";

/**
 * The read buffer a connection starts with (and gets back when parked): an answer's head, a stream event or a short
 * answer fits. A read that fills it grows the next; a stream's small reads shrink it (issue 22.4c: RSS per stream).
 */
const FIRST_READ_BYTES = 2 * 1024;
/** A read that fills the buffer doubles the next one, up to this: a large answer still takes few reads. */
const READ_BYTES = 16 * 1024;
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
const ROOM_READS = 4;

/** Decodes ASCII bytes only (where UTF-8 and Latin-1 agree). */
const asciiDecoder = new TextDecoder();

/**
 * A socket with a read buffer: the bytes read but not yet consumed are `buffer[start..end)`. `onClose` is told once,
 * when it is closed.
 */
export class Connection {
  #buffer = new Uint8Array(FIRST_READ_BYTES);
  #start = 0;
  #end = 0;
  /** The last read filled the whole buffer (not only the room behind bytes lent or not yet consumed). */
  #filled = false;
  /** Reads in a row that took at most a third of the buffer, and the largest of them. */
  #small = 0;
  #largest = 0;
  #closed = false;
  /** Set once any byte of an answer has arrived on this use. */
  answered = false;
  /** Set once the request of this use is fully written. */
  sent = false;
  streamed = false; // a request with a streamed body went out on it: never parked for reuse
  /** While parked: when it stops being reusable (`performance.now()` ms). */
  expiresAt = 0;
  /** The read kept pending while the connection is parked. */
  #watch?: Promise<number | null>;
  /** The watch read settled while parked: the server closed, or sent bytes nobody asked for. */
  #spoiled = false;
  #ended = false;

  constructor(readonly conn: Deno.Conn, readonly origin: string, private readonly onClose?: () => void) {}

  get reusable(): boolean {
    return !this.#closed && !this.#spoiled;
  }

  /**
   * Parks the connection until `expiresAt`. A read stays pending meanwhile, so a server that closes an idle
   * connection (or answers it with a stray 408) is noticed before a request is sent on it; that read becomes the
   * first read of the next use.
   */
  idle(expiresAt: number): void {
    this.expiresAt = expiresAt;
    this.#spoiled = false;
    this.#filled = false;
    this.#small = this.#largest = 0;
    this.#start = this.#end = 0;
    // The next answer's head is read into it: a stream's small buffer would take it in several reads.
    if (this.#buffer.length < FIRST_READ_BYTES) this.#renew(FIRST_READ_BYTES);
    // A parked connection's read does not keep the process alive; `fill` makes it count again.
    const watch = idleRead(this.conn, this.#buffer);
    this.#watch = watch;
    const settled = () => {
      if (this.#watch === watch) this.#spoiled = true;
    };
    watch.then(settled, settled);
  }

  /** The read buffer's size: what the connection keeps while it waits for bytes (an open stream's share). */
  get bufferBytes(): number {
    return this.#buffer.length;
  }

  get available(): number {
    return this.#end - this.#start;
  }

  /** Writes a request (`sent` once all of it is written). One buffer takes one write, nearly always. */
  write(message: Uint8Array | readonly Uint8Array[]): Promise<void> {
    this.answered = false;
    this.sent = false;
    if (!(message instanceof Uint8Array)) return this.#writeParts(message);
    // Not async: the write's own promise is the only one made when it takes the whole buffer (a failed write
    // rejects it, never throws).
    return this.conn.write(message).then((written) => {
      if (written === message.length) this.sent = true;
      else return this.#writeParts([message.subarray(written)]);
    });
  }

  async #writeParts(parts: readonly Uint8Array[]): Promise<void> {
    for (const bytes of parts) {
      let written = 0;
      while (written < bytes.length) written += await this.conn.write(bytes.subarray(written));
    }
    this.sent = true;
  }

  /**
   * Reads more bytes into the buffer; false at the end of the stream (`ended` is set then). `onError` takes a failed
   * read (what it returns or throws settles the promise); `after` is told once a read that did not fail is taken in.
   * Not an async function: a stream's body is read with one of these per event (one promise: the read's).
   */
  fill(limit = READ_BYTES, onError?: (error: unknown) => boolean, after?: () => void): Promise<boolean> {
    const buffer = this.#buffer;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    // Not while parked: the pending read writes into the buffer it was given.
    const size = this.#watch ? buffer.length : this.#nextSize();
    if (size !== buffer.length && this.available <= size >> 2) {
      // Few bytes to carry over (a stream's usual read: none, or the last chunk's CRLF).
      this.#renew(size);
      this.#small = this.#largest = 0;
    } else if (this.#end === buffer.length) {
      // Full: the bytes not yet consumed move to the start, or (all of it unconsumed) the buffer grows.
      this.#renew(this.#start > 0 ? buffer.length : this.#grown(limit));
    }
    this.#after = after;
    const watch = this.#watch;
    // An empty buffer (a stream's usual read: its last event was taken) is read into whole: no view to make.
    if (!watch) {
      const room = this.#end === 0 ? this.#buffer : this.#buffer.subarray(this.#end);
      return socketRead(this.conn, room).then(this.#onRead, onError);
    }
    // Parked with an empty buffer, the watch read fills it from the start, where this read would have.
    this.#watch = undefined;
    wakeRead(this.conn, watch);
    return watch.then(this.#onRead, onError);
  }

  #after: (() => void) | undefined; // told once the pending read is taken in (`fill`)

  readonly #onRead = (read: number | null): boolean => {
    const after = this.#after;
    this.#after = undefined;
    if (!read) this.#ended = true;
    else {
      this.answered = true;
      // Only a read that filled a whole buffer asks for a larger one, not one behind bytes still buffered.
      this.#filled = read === this.#buffer.length;
      this.#small = read * ROOM_READS <= this.#buffer.length ? this.#small + 1 : 0;
      this.#largest = this.#small ? Math.max(this.#largest, read) : 0;
      this.#end += read;
    }
    after?.();
    return !!read;
  };

  /** A read found the end of the stream: the bytes buffered are all that will come. */
  get ended(): boolean {
    return this.#ended;
  }

  /** The next buffer's size: doubled after a read that filled it (up to `READ_BYTES`), less after small reads. */
  #nextSize(): number {
    const size = this.#buffer.length;
    if (this.#filled) return size < READ_BYTES ? Math.min(size * 2, READ_BYTES) : size;
    if (this.#small < SHRINK_AFTER || size <= MIN_READ_BYTES) return size;
    let next = size >> 1;
    while (next > MIN_READ_BYTES && this.#largest * ROOM_READS <= next) next >>= 1;
    return Math.max(MIN_READ_BYTES, next);
  }

  /** The size of a larger buffer for a line that does not fit; throws past `limit`. */
  #grown(limit: number): number {
    if (this.#buffer.length >= limit) {
      throw new UpstreamProtocolError("a line of the upstream's answer is too long");
    }
    return Math.min(limit, this.#buffer.length * 2);
  }

  /**
   * The buffer resized in place to `size` (the old size freed now), the bytes not yet consumed moved to its start.
   * Never while a read is pending: the read writes into it.
   */
  #renew(size: number): void {
    const pending = this.#end - this.#start;
    if (this.#start > 0) this.#buffer.copyWithin(0, this.#start, this.#end);
    if (size !== this.#buffer.length) this.#buffer = new Uint8Array(this.#buffer.buffer.transfer(size));
    this.#start = 0;
    this.#end = pending;
  }

  /**
   * The length (CRLF included) of the buffered line the next byte starts, or -1 when its end is not buffered yet.
   * `scanned`: bytes already searched by an earlier call for the same line.
   */
  lineLength(scanned = 0): number {
    const at = this.#indexOfCrlf(this.#start + scanned);
    return at < 0 ? -1 : at + 2 - this.#start;
  }

  /**
   * The length of the buffered block up to and including the empty line that ends it, or -1 while that line is not
   * buffered (`scanned`: bytes already searched for it); throws once `limit` bytes are buffered without it.
   */
  blankLineEnd(limit: number, scanned = 0): number {
    const buffer = this.#buffer;
    for (let at = this.#indexOfCrlf(this.#start + scanned); at >= 0; at = this.#indexOfCrlf(at + 2)) {
      if (at + 3 < this.#end && buffer[at + 2] === 13 && buffer[at + 3] === 10) return at + 4 - this.#start;
    }
    if (this.available >= limit) throw new UpstreamProtocolError("the upstream's answer head is too large");
    return -1;
  }

  /** The offset of the next CRLF at or after `from` within the buffered bytes, or -1. */
  #indexOfCrlf(from: number): number {
    const buffer = this.#buffer;
    const last = this.#end - 1;
    for (let at = from; at < last; at++) {
      if (buffer[at] === 13 && buffer[at + 1] === 10) return at;
    }
    return -1;
  }

  /** Consumes `length` buffered bytes as text, one char per byte (header bytes are Latin-1). */
  takeText(length: number): string {
    const bytes = this.#buffer.subarray(this.#start, this.#start + length);
    this.#start += length;
    // An ASCII head (the usual one) is decoded natively: a third of the time, and no argument list of a char per byte.
    if (isAscii(bytes)) return asciiDecoder.decode(bytes);
    let text = "";
    for (let at = 0; at < bytes.length; at += 8192) {
      text += String.fromCharCode.apply(null, bytes.subarray(at, at + 8192) as unknown as number[]);
    }
    return text;
  }

  /**
   * Consumes up to `length` buffered bytes as a copy, so the buffer is read into again: not views of it, which kept
   * whole retired buffers alive until a full collection (~20 MiB of the 1,000-stream RSS peak, issue 22.4c). A
   * body's chunk is carved out of a shared slab (`chunk_slab.ts`); `own`: a buffer of its own (a whole answer).
   */
  take(length: number, own = false): Uint8Array<ArrayBuffer> {
    const start = this.#start;
    const end = Math.min(this.#end, start + length);
    this.#start = end;
    return own ? this.#buffer.slice(start, end) : slabCopyRange(this.#buffer, start, end);
  }

  /** Consumes `length` buffered bytes unread. */
  skip(length: number): void {
    this.#start = Math.min(this.#end, this.#start + length);
  }

  /** Consumes a chunk-size line of `length` bytes (CRLF included): its size, or undefined if it is not one. */
  takeChunkSize(length: number): number | undefined {
    const buffer = this.#buffer;
    const start = this.#start;
    const end = start + length - 2;
    this.#start += length;
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

  byteAt(offset: number): number {
    return this.#buffer[this.#start + offset];
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose?.();
    try {
      this.conn.close();
    } catch {
      // already closed by the runtime
    }
  }
}
