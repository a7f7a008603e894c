/**
 * Reads an upstream body chunk by chunk without holding a large buffer per open stream. Deno's fetch bodies are
 * byte streams whose default reader allocates 64 KiB for every read, and each chunk handed on is a view that keeps
 * those 64 KiB alive until the client has it: with a thousand slow streams open that is hundreds of MiB for
 * answers of a few hundred bytes per chunk. A BYOB reader fills one reusable buffer per stream instead, and each
 * chunk is copied out at its own size. Bodies that are not byte streams are read as they are; the HTTP/1.1
 * client's bodies without their stream (`upstream/body_source.ts`). Either way the chunks are polled
 * (`ChunkSource`): a reader of a stream is read into a slot that `poll` empties.
 */

import { type BodySource, type ChunkSource, readSource, sourceOf } from "../upstream/body_source.ts";

/** Bytes read at most per chunk (an event larger than this arrives in several reads; the framer joins them). */
export const READ_BUFFER_BYTES = 16 * 1024;

export interface ChunkReader extends ChunkSource {
  /** The next chunk, or undefined at the end. */
  read(): Promise<Uint8Array | undefined>;
  cancel(reason?: unknown): Promise<void>;
  releaseLock(): void;
}

/**
 * A body's chunks read straight off its source (no stream was made for it); `releaseLock` has nothing to do. One
 * object for as long as the stream is open, not five closures.
 */
export function sourceReader(source: BodySource): ChunkReader {
  return new SourceReader(source);
}

class SourceReader implements ChunkReader {
  constructor(private readonly source: BodySource) {}
  read(): Promise<Uint8Array | undefined> {
    return readSource(this.source);
  }
  poll(): Uint8Array | null | undefined {
    return this.source.poll();
  }
  wait(then: () => void): void {
    this.source.wait(then);
  }
  cancel(): Promise<void> {
    this.source.cancel();
    return Promise.resolve();
  }
  releaseLock(): void {}
}

/**
 * `body`'s chunks as the stream hands them out (no copy): polled from its source where it has one (the proxy's
 * own HTTP/1.1 client: chunks straight off the connection, which never overwrites them; a pass-through of
 * `tap.ts`), else read one at a time with its default reader.
 */
export function pollReader(body: ReadableStream<Uint8Array>): ChunkReader {
  const source = sourceOf(body);
  const lock = body.getReader();
  if (!source) {
    return slotted(async () => {
      const { done, value } = await lock.read();
      return done ? undefined : value;
    }, lock);
  }
  return {
    read: () => readSource(source),
    poll: () => source.poll(),
    wait: (then) => source.wait(then),
    cancel: (reason) => lock.cancel(reason),
    releaseLock: () => lock.releaseLock(),
  };
}

/** `body`'s chunks, each its own copy of its bytes where the body is a byte stream (see above). */
export function chunkReader(body: ReadableStream<Uint8Array>): ChunkReader {
  if (sourceOf(body)) return pollReader(body);
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // not a byte stream
  }
  if (!byob) return pollReader(body);
  const byteReader = byob;
  let buffer: ArrayBuffer | undefined = new ArrayBuffer(READ_BUFFER_BYTES);
  return slotted(async () => {
    // A read transfers the buffer to the stream and hands it back filled; it is reused for the next read.
    const { done, value } = await byteReader.read(
      new Uint8Array(buffer ?? new ArrayBuffer(READ_BUFFER_BYTES)),
    );
    buffer = value?.buffer as ArrayBuffer | undefined;
    if (done || !value) return undefined;
    return value.slice();
  }, byteReader);
}

/** A reader whose `wait` reads one chunk (or the failure) into a slot that `poll` empties. */
function slotted(
  read: () => Promise<Uint8Array | undefined>,
  lock: { cancel(reason?: unknown): Promise<void>; releaseLock(): void },
): ChunkReader {
  let slot: Uint8Array | null | undefined;
  let failure: { error: unknown } | undefined;
  const source: ChunkSource = {
    poll: () => {
      if (failure) throw failure.error;
      const chunk = slot;
      if (chunk !== null) slot = undefined;
      return chunk;
    },
    wait: (then) => {
      read().then((chunk) => {
        slot = chunk ?? null;
        then();
      }, (error) => {
        failure = { error };
        then();
      });
    },
  };
  return {
    ...source,
    read: () => readSource(source),
    cancel: (reason) => lock.cancel(reason),
    releaseLock: () => lock.releaseLock(),
  };
}
