/**
 * One upstream socket of the proxy's HTTP/1.1 client (`http1.ts`) with its read buffer, parked reads and the
 * reading of an answer: its head, then its body as a stream the consumer pulls.
 */

import type { AnswerGuard } from "./answer_guard.ts";
import { type Framing, type Head, MAX_HEAD_BYTES, parseHead, UpstreamProtocolError } from "./http1_wire.ts";

/** Bytes read from the socket at most per read; also the buffer each connection keeps. */
const READ_BYTES = 16 * 1024;

/** Reads the answer's head, skipping interim (1xx) answers. */
export async function readHead(connection: Connection): Promise<Head> {
  for (;;) {
    const end = await connection.readUntilBlankLine(MAX_HEAD_BYTES);
    const head = parseHead(connection.takeText(end));
    if (head.status >= 200) return head;
    if (head.status === 101) throw new UpstreamProtocolError("the upstream switched protocols");
  }
}

/** A socket with a read buffer: the bytes read but not yet consumed are `buffer[start..end)`. */
export class Connection {
  #buffer = new Uint8Array(READ_BYTES);
  #start = 0;
  #end = 0;
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

  constructor(readonly conn: Deno.Conn, readonly origin: string) {}

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
    this.#start = this.#end = 0;
    const watch = this.conn.read(this.#buffer);
    this.#watch = watch;
    // A parked connection's read does not keep the process alive; `take` makes it count again.
    this.conn.unref();
    const settled = () => {
      if (this.#watch === watch) this.#spoiled = true;
    };
    watch.then(settled, settled);
  }

  get available(): number {
    return this.#end - this.#start;
  }

  async write(message: Uint8Array | readonly Uint8Array[]): Promise<void> {
    this.answered = false;
    this.sent = false;
    if (message instanceof Uint8Array) await this.#writeAll(message);
    else for (const bytes of message) await this.#writeAll(bytes);
    this.sent = true;
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) written += await this.conn.write(bytes.subarray(written));
  }

  /** Reads more bytes into the buffer; false at the end of the stream. */
  async fill(limit = READ_BYTES): Promise<boolean> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    else if (this.#end === this.#buffer.length) {
      if (this.#start > 0) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      } else {
        if (this.#buffer.length >= limit) {
          throw new UpstreamProtocolError("a line of the upstream's answer is too long");
        }
        const larger = new Uint8Array(Math.min(limit, this.#buffer.length * 2));
        larger.set(this.#buffer.subarray(0, this.#end));
        this.#buffer = larger;
      }
    }
    let read: number | null;
    const watch = this.#watch;
    if (watch) {
      // Parked with an empty buffer, the watch read fills it from the start, where this read would have.
      this.#watch = undefined;
      read = await watch;
    } else read = await this.conn.read(this.#buffer.subarray(this.#end));
    if (read === null) return false;
    this.answered = true;
    this.#end += read;
    return true;
  }

  /** Reads until the buffer holds a whole line; returns its length with the CRLF. */
  async readLine(limit: number): Promise<number> {
    let scanned = 0;
    for (;;) {
      const at = this.#indexOfCrlf(this.#start + scanned);
      if (at >= 0) return at + 2 - this.#start;
      scanned = Math.max(0, this.available - 1);
      if (!await this.fill(limit)) {
        throw new UpstreamProtocolError("the upstream closed the connection mid-answer");
      }
    }
  }

  /** Reads until an empty line; returns the length of the block up to and including it. */
  async readUntilBlankLine(limit: number): Promise<number> {
    let scanned = 0;
    for (;;) {
      const buffer = this.#buffer;
      for (let at = this.#indexOfCrlf(this.#start + scanned); at >= 0; at = this.#indexOfCrlf(at + 2)) {
        if (at + 3 < this.#end && buffer[at + 2] === 13 && buffer[at + 3] === 10) return at + 4 - this.#start;
      }
      scanned = Math.max(0, this.available - 3);
      if (this.available >= limit) throw new UpstreamProtocolError("the upstream's answer head is too large");
      if (!await this.fill(limit + 4)) {
        throw new UpstreamProtocolError(
          this.answered
            ? "the upstream closed the connection mid-answer"
            : "the upstream closed the connection",
        );
      }
    }
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
    let text = "";
    for (let at = 0; at < bytes.length; at += 8192) {
      text += String.fromCharCode.apply(null, bytes.subarray(at, at + 8192) as unknown as number[]);
    }
    return text;
  }

  /** Consumes up to `length` buffered bytes as a copy of their own. */
  take(length: number): Uint8Array<ArrayBuffer> {
    const end = Math.min(this.#end, this.#start + length);
    const bytes = this.#buffer.slice(this.#start, end);
    this.#start = end;
    return bytes;
  }

  byteAt(offset: number): number {
    return this.#buffer[this.#start + offset];
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed by the runtime
    }
  }
}

/** Reads a body off a connection as its framing says, as a stream the consumer pulls. */
export class BodyReader {
  /** Bytes of the current chunk (or of the whole body, for a length) still to come. */
  #left: number;
  #state: "data" | "size" | "crlf" | "trailers" | "done";
  #trailerBytes = 0;

  constructor(
    private readonly connection: Connection,
    private readonly framing: Framing,
    private readonly done: (complete: boolean) => void,
    private readonly signal: AbortSignal,
    private readonly guard?: AnswerGuard,
  ) {
    this.#left = framing.kind === "length" ? framing.length : framing.kind === "close" ? Infinity : 0;
    this.#state = framing.kind === "chunked" ? "size" : "data";
  }

  stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    let ended = false;
    const end = (complete: boolean) => {
      if (ended) return;
      ended = true;
      this.done(complete);
    };
    return new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        if (this.signal.aborted) {
          // Bytes already buffered are not handed on after an abort: the body ends with the reason.
          end(false);
          controller.error(this.signal.reason);
          return;
        }
        try {
          for (;;) {
            const chunk = await this.#next();
            if (!chunk) break;
            // The guard may hold back bytes that could begin a secret: read on until it passes some.
            const passed = this.guard ? this.guard.chunk(chunk) : chunk;
            if (passed) return controller.enqueue(passed);
          }
          const held = this.guard?.end();
          if (held) controller.enqueue(held);
          end(true);
          controller.close();
        } catch (error) {
          end(false);
          controller.error(this.signal.aborted ? this.signal.reason : error);
        }
      },
      cancel: () => end(false),
    }, { highWaterMark: 0 });
  }

  /** The next bytes of the body, as soon as any are there; undefined at its end. */
  async #next(): Promise<Uint8Array<ArrayBuffer> | undefined> {
    const connection = this.connection;
    for (;;) {
      switch (this.#state) {
        case "data":
          if (this.#left === 0) {
            if (this.framing.kind !== "chunked") return undefined;
            this.#state = "crlf";
            continue;
          }
          if (connection.available === 0 && !await connection.fill()) {
            if (this.framing.kind === "close") return undefined;
            throw new UpstreamProtocolError("the upstream closed the connection mid-answer");
          } else if (connection.available > 0) {
            const bytes = connection.take(this.#left);
            this.#left -= bytes.length;
            return bytes;
          }
          continue;
        case "size": {
          const length = await connection.readLine(READ_BYTES);
          const line = connection.takeText(length);
          const size = /^([0-9a-fA-F]{1,12})[ \t]*(;[^\r\n]*)?\r\n$/.exec(line);
          if (!size) throw new UpstreamProtocolError("malformed chunk size from the upstream");
          this.#left = parseInt(size[1], 16);
          this.#state = this.#left === 0 ? "trailers" : "data";
          continue;
        }
        case "crlf": {
          while (connection.available < 2) {
            if (!await connection.fill()) {
              throw new UpstreamProtocolError("the upstream closed the connection mid-answer");
            }
          }
          if (connection.byteAt(0) !== 13 || connection.byteAt(1) !== 10) {
            throw new UpstreamProtocolError("malformed chunk end from the upstream");
          }
          connection.take(2);
          this.#state = "size";
          continue;
        }
        case "trailers": {
          const length = await connection.readLine(MAX_HEAD_BYTES);
          connection.takeText(length);
          this.#trailerBytes += length;
          if (this.#trailerBytes > MAX_HEAD_BYTES) {
            throw new UpstreamProtocolError("the upstream's trailers are too large");
          }
          if (length === 2) this.#state = "done";
          continue;
        }
        case "done":
          return undefined;
      }
    }
  }
}
