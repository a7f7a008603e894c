/**
 * One upstream socket of the proxy's HTTP/1.1 client (`http1.ts`) with its read buffer and parked reads (an
 * answer's head is read by `http1_head.ts`, its body by `http1_body.ts`). The buffer's size is `read_sizing.ts`'s
 * call; the scans over its bytes are `http1_scan.ts`'s.
 */

import { UpstreamProtocolError } from "./http1_wire.ts";
import { idleRead, socketRead, wakeRead } from "./socket_read.ts";
import { slabCopyRange } from "./chunk_slab.ts";
import { FIRST_READ_BYTES, nextReadSize, READ_BYTES, ROOM_READS } from "./read_sizing.ts";
import { chunkSizeOf, indexOfCrlf, latin1Text } from "./http1_scan.ts";

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
    const size = this.#watch
      ? buffer.length
      : nextReadSize(buffer.length, this.#filled, this.#small, this.#largest);
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
    const at = indexOfCrlf(this.#buffer, this.#start + scanned, this.#end);
    return at < 0 ? -1 : at + 2 - this.#start;
  }

  /**
   * The length of the buffered block up to and including the empty line that ends it, or -1 while that line is not
   * buffered (`scanned`: bytes already searched for it); throws once `limit` bytes are buffered without it.
   */
  blankLineEnd(limit: number, scanned = 0): number {
    const buffer = this.#buffer;
    const end = this.#end;
    for (
      let at = indexOfCrlf(buffer, this.#start + scanned, end);
      at >= 0;
      at = indexOfCrlf(buffer, at + 2, end)
    ) {
      if (at + 3 < end && buffer[at + 2] === 13 && buffer[at + 3] === 10) return at + 4 - this.#start;
    }
    if (this.available >= limit) throw new UpstreamProtocolError("the upstream's answer head is too large");
    return -1;
  }

  /** Consumes `length` buffered bytes as text, one char per byte (header bytes are Latin-1). */
  takeText(length: number): string {
    const bytes = this.#buffer.subarray(this.#start, this.#start + length);
    this.#start += length;
    return latin1Text(bytes);
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
    const start = this.#start;
    this.#start += length;
    return chunkSizeOf(this.#buffer, start, start + length - 2);
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
