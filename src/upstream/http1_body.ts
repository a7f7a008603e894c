/**
 * Reading an answer's body off an upstream connection (`http1_connection.ts`) as its framing says: by length, by
 * chunks, or to the connection's close. The body is a stream the consumer pulls; its chunks can also be read
 * without the stream (`body_source.ts`), as the SSE pass-through does. Chunk sizes and the line breaks between
 * chunks are read off the bytes, and a chunk's data is copied out of the connection's buffer as it is handed on.
 */

import type { AbortLike } from "../core/abort_like.ts";
import type { AnswerGuard } from "./answer_guard.ts";
import { type BodySource, readSource, withSource } from "./body_source.ts";
import type { Connection } from "./http1_connection.ts";
import { type Framing, MAX_HEAD_BYTES, UpstreamProtocolError } from "./http1_wire.ts";

/** Longest chunk-size line accepted (size, extensions, CRLF). */
const MAX_SIZE_LINE = 16 * 1024;

export class BodyReader implements BodySource {
  /** Bytes of the current chunk (or of the whole body, for a length) still to come. */
  #left: number;
  #state: "data" | "size" | "crlf" | "trailers" | "done";
  #trailerBytes = 0;
  #ended = false;
  /** How large the buffer may grow for the next read (a line being read); undefined: the connection's default. */
  #limit: number | undefined;
  /** Bytes of the line being read already searched for its end. */
  #scanned = 0;
  /** A read of the connection failed: `poll` throws this. */
  #readError: { error: unknown } | undefined;

  constructor(
    private readonly connection: Connection,
    private readonly framing: Framing,
    private readonly done: (complete: boolean) => void,
    private readonly signal: AbortLike,
    private readonly guard?: AnswerGuard,
  ) {
    this.#left = framing.kind === "length" ? framing.length : framing.kind === "close" ? Infinity : 0;
    this.#state = framing.kind === "chunked" ? "size" : "data";
  }

  /** The body as a stream the consumer pulls; its chunks may also be read with `read` (the stream locked). */
  stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    const stream = new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        try {
          const chunk = await this.read();
          if (chunk) controller.enqueue(chunk);
          else controller.close();
        } catch (error) {
          controller.error(error);
        }
      },
      cancel: () => this.cancel(),
    }, { highWaterMark: 0 });
    return withSource(stream, this);
  }

  /** Gives the body up unread: the connection is closed. */
  cancel(): void {
    this.#end(false);
  }

  /**
   * The next bytes of the body as the guard passes them (bytes nothing overwrites later), as soon as any are
   * there; undefined at the end. An error, or the signal's abort (bytes already buffered are not handed on then), ends the body too.
   */
  read(): Promise<Uint8Array<ArrayBuffer> | undefined> {
    return readSource(this);
  }

  /**
   * `read` without a promise when bytes are at hand: the next bytes the guard passes, null at the end, or undefined
   * when `wait` must be awaited first. A stream's pass-through reads each event this way (one read of the socket
   * per event, nothing else awaited).
   */
  poll(): Uint8Array<ArrayBuffer> | null | undefined {
    if (this.#ended) return null;
    if (this.signal.aborted) {
      this.#end(false);
      throw this.signal.reason;
    }
    const pending = this.#pending;
    if (pending) {
      this.#pending = undefined;
      return this.#joined(pending);
    }
    try {
      if (this.#readError !== undefined) throw this.#readError.error;
      for (;;) {
        const chunk = this.#take();
        if (chunk === undefined) return undefined;
        if (chunk === null) {
          const held = this.guard?.end();
          this.#end(true);
          return held ?? null;
        }
        // The guard may hold back bytes that could begin a secret: read on until it passes some.
        const passed = this.guard ? this.guard.chunk(chunk) : chunk;
        if (passed) return this.#joined(passed);
      }
    } catch (error) {
      this.#end(false);
      throw this.signal.aborted ? this.signal.reason : error;
    }
  }

  /** A chunk passed but not handed on yet: it did not follow on from the one before (`#joined`). */
  #pending: Uint8Array<ArrayBuffer> | undefined;

  /**
   * `first` and the chunks buffered after it as one view, where their copies lie end to end in the slab (chunks of
   * one read do, `chunk_slab.ts`): the events of one read then reach the client in one write, not one each (the
   * runtime's drain costs a read, a write and their promises per chunk; a busy process reads several events at
   * once). A chunk that does not follow on is handed on by the next poll; the end, or a failure, too.
   */
  #joined(first: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
    let joined = first;
    try {
      for (;;) {
        const chunk = this.#take();
        if (!chunk) return joined;
        const passed = this.guard ? this.guard.chunk(chunk) : chunk;
        if (!passed) continue;
        if (passed.buffer !== joined.buffer || passed.byteOffset !== joined.byteOffset + joined.length) {
          this.#pending = passed;
          return joined;
        }
        joined = new Uint8Array(joined.buffer, joined.byteOffset, joined.length + passed.length);
      }
    } catch (error) {
      this.#readError = { error };
      return joined;
    }
  }

  /** Reads more of the answer off the connection, then calls `then` (`poll` throws if the read failed). */
  wait(then: () => void): void {
    this.#then = then;
    try {
      this.connection.fill(this.#limit, this.#failed, then);
    } catch (error) {
      this.#readError = { error };
      queueMicrotask(then);
    }
  }

  /** Whom the pending read tells when it failed. */
  #then: (() => void) | undefined;

  readonly #failed = (error: unknown): boolean => {
    this.#readError = { error };
    this.#then?.();
    return false;
  };

  #end(complete: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    this.done(complete);
  }

  /**
   * The next bytes of the body if they are buffered; null at its end; undefined when more must be read first
   * (`#limit` then says how large the buffer may grow for it).
   */
  #take(): Uint8Array<ArrayBuffer> | null | undefined {
    const connection = this.connection;
    for (;;) {
      switch (this.#state) {
        case "data":
          if (this.#left === 0) {
            if (this.framing.kind !== "chunked") return null;
            this.#state = "crlf";
            continue;
          }
          if (connection.available > 0) {
            const bytes = connection.take(this.#left);
            this.#left -= bytes.length;
            return bytes;
          }
          if (connection.ended && this.framing.kind === "close") return null;
          return this.#more(undefined);
        case "size": {
          const length = this.#line(MAX_SIZE_LINE);
          if (length < 0) return undefined;
          const size = connection.takeChunkSize(length);
          if (size === undefined) throw new UpstreamProtocolError("malformed chunk size from the upstream");
          this.#left = size;
          this.#state = size === 0 ? "trailers" : "data";
          continue;
        }
        case "crlf":
          if (connection.available < 2) return this.#more(undefined);
          if (connection.byteAt(0) !== 13 || connection.byteAt(1) !== 10) {
            throw new UpstreamProtocolError("malformed chunk end from the upstream");
          }
          connection.skip(2);
          this.#state = "size";
          continue;
        case "trailers": {
          const length = this.#line(MAX_HEAD_BYTES);
          if (length < 0) return undefined;
          connection.skip(length);
          this.#trailerBytes += length;
          if (this.#trailerBytes > MAX_HEAD_BYTES) {
            throw new UpstreamProtocolError("the upstream's trailers are too large");
          }
          if (length === 2) this.#state = "done";
          continue;
        }
        case "done":
          return null;
      }
    }
  }

  /** The length of the whole line buffered next, or -1 (more must be read, the buffer growing up to `limit`). */
  #line(limit: number): number {
    const length = this.connection.lineLength(this.#scanned);
    if (length >= 0) {
      this.#scanned = 0;
      return length;
    }
    this.#scanned = Math.max(0, this.connection.available - 1);
    this.#more(limit);
    return -1;
  }

  /** More bytes are needed; the upstream closing instead is a cut answer. */
  #more(limit: number | undefined): undefined {
    if (this.connection.ended) {
      throw new UpstreamProtocolError("the upstream closed the connection mid-answer");
    }
    this.#limit = limit;
    return undefined;
  }
}
