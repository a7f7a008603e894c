/**
 * An answer body's chunks without its stream. The HTTP/1.1 client notes here each body it reads off a connection
 * itself; a consumer that pulls chunk by chunk anyway (the SSE pass-through) takes them straight from the
 * connection's reader. That saves a stream layer per chunk (a pull call, an enqueue and a read promise), where a
 * stream's events are most of what the proxy does; `poll` and `wait` save the promises of the reads that find
 * their bytes already buffered. The pass-through's own stream and the watchers stacked on it note theirs here too
 * (`proxy/tap.ts`), so a stack of them is one stream layer for the runtime to pull. Any other consumer reads the
 * stream as usual.
 */

export interface ChunkSource {
  /**
   * The next chunk if it is at hand (bytes nothing overwrites later); null at the end (and after it); undefined
   * when `wait` must be awaited first. Throws what reading failed with.
   */
  poll(): Uint8Array | null | undefined;
  /**
   * Calls `then` (later, once) when `poll` has something to say: a chunk, the end, or the failure it throws. A
   * callback rather than a promise: a stream waits once per event, and the promise would be one more per event.
   */
  wait(then: () => void): void;
}

/** `source.wait` as a promise. */
export function waitFor(source: ChunkSource): Promise<void> {
  return new Promise((resolve) => source.wait(resolve));
}

/**
 * A body that can be read without ever making its stream (the HTTP/1.1 client's, `Reply.source`): its chunks, and
 * `cancel` to give it up. A stream answer open for minutes holds no web stream for it then (a stream, its
 * controller, a reader and their promises: ~2.5 KB per open stream, issue 22.4c).
 */
export interface BodySource extends ChunkSource {
  cancel(): void;
}

/** The next chunk of `source` (waiting for it if need be), or undefined at the end. */
export async function readSource<T extends Uint8Array>(
  source: { poll(): T | null | undefined; wait(then: () => void): void },
): Promise<T | undefined> {
  for (;;) {
    const chunk = source.poll();
    if (chunk !== undefined) return chunk ?? undefined;
    await waitFor(source);
  }
}

/** Where a stream notes its source: a property of its own (a WeakMap entry costs more, to set and to collect). */
const SOURCE = Symbol("chunk source");

type Noted = { [SOURCE]?: ChunkSource };

/** Notes that `stream`'s chunks can be read from `source`; returns the stream. */
export function withSource<S extends ReadableStream<Uint8Array>>(stream: S, source: ChunkSource): S {
  (stream as unknown as Noted)[SOURCE] = source;
  return stream;
}

/** The source behind `stream`, if it has one. Who reads from it must hold the stream's lock meanwhile. */
export function sourceOf(stream: ReadableStream<Uint8Array>): ChunkSource | undefined {
  return (stream as unknown as Noted)[SOURCE];
}
