/**
 * An answer body's chunks without its stream. The HTTP/1.1 client notes here each body it reads off a connection
 * itself; a consumer that pulls chunk by chunk anyway (the SSE pass-through) takes them straight from the
 * connection's reader. That saves a stream layer per chunk (a pull call, an enqueue and a read promise), where a
 * stream's events are most of what the proxy does; `poll` and `wait` save the promises of the reads that find
 * their bytes already buffered. Any other consumer reads the stream as usual.
 */

export interface ChunkSource {
  /** The next chunk (bytes nothing overwrites later), or undefined at the end. */
  read(): Promise<Uint8Array | undefined>;
  /** The next chunk if it is at hand without waiting; null at the end; undefined: `wait` first. */
  poll(): Uint8Array | null | undefined;
  /** Resolves once `poll` may have more (rejects when reading failed). */
  wait(): Promise<unknown>;
}

const sources = new WeakMap<ReadableStream<Uint8Array>, ChunkSource>();

/** Notes that `stream`'s chunks can be read from `source`; returns the stream. */
export function withSource<S extends ReadableStream<Uint8Array>>(stream: S, source: ChunkSource): S {
  sources.set(stream, source);
  return stream;
}

/** The source behind `stream`, if it has one. Who reads from it must hold the stream's lock meanwhile. */
export function sourceOf(stream: ReadableStream<Uint8Array>): ChunkSource | undefined {
  return sources.get(stream);
}
