/**
 * Reads an upstream body chunk by chunk without holding a large buffer per open stream. Deno's fetch bodies are
 * byte streams whose default reader allocates 64 KiB for every read, and each chunk handed on is a view that keeps
 * those 64 KiB alive until the client has it: with a thousand slow streams open that is hundreds of MiB for
 * answers of a few hundred bytes per chunk. A BYOB reader fills one reusable buffer per stream instead, and each
 * chunk is copied out at its own size. Bodies that are not byte streams are read as they are; the HTTP/1.1
 * client's bodies without their stream (`upstream/body_source.ts`).
 */

import { sourceOf } from "../upstream/body_source.ts";

/** Bytes read at most per chunk (an event larger than this arrives in several reads; the framer joins them). */
export const READ_BUFFER_BYTES = 16 * 1024;

export interface ChunkReader {
  /** The next chunk (its own copy), or undefined at the end. */
  read(): Promise<Uint8Array | undefined>;
  cancel(reason?: unknown): Promise<void>;
  releaseLock(): void;
}

export function chunkReader(body: ReadableStream<Uint8Array>): ChunkReader {
  const source = sourceOf(body);
  if (source) {
    // The proxy's own HTTP/1.1 client: chunks straight off the connection, which never overwrites them.
    const lock = body.getReader();
    return {
      read: () => source.read(),
      cancel: (reason) => lock.cancel(reason),
      releaseLock: () => lock.releaseLock(),
    };
  }
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // not a byte stream
  }
  if (!byob) {
    const reader = body.getReader();
    return {
      read: async () => {
        const { done, value } = await reader.read();
        return done ? undefined : value;
      },
      cancel: (reason) => reader.cancel(reason),
      releaseLock: () => reader.releaseLock(),
    };
  }
  const byteReader = byob;
  let buffer: ArrayBuffer | undefined = new ArrayBuffer(READ_BUFFER_BYTES);
  return {
    read: async () => {
      // A read transfers the buffer to the stream and hands it back filled; it is reused for the next read.
      const { done, value } = await byteReader.read(
        new Uint8Array(buffer ?? new ArrayBuffer(READ_BUFFER_BYTES)),
      );
      buffer = value?.buffer as ArrayBuffer | undefined;
      if (done || !value) return undefined;
      return value.slice();
    },
    cancel: (reason) => byteReader.cancel(reason),
    releaseLock: () => byteReader.releaseLock(),
  };
}
