/**
 * Pass-throughs of a byte stream, one stream each (a `TransformStream` is two). `tapStream` watches it without
 * buffering: each chunk is handed on as the client pulls it, and told to `onChunk` on the way; `onEnd` is told
 * once whether the stream ran to its end (true) or was cancelled or failed (false). A client that leaves cancels
 * the source.
 *
 * A source whose chunks can be polled (`upstream/body_source.ts`: the upstream body, the SSE pass-through, these
 * pass-throughs themselves) is not pulled as a stream: the new stream polls it, and a stack of watchers is one
 * stream layer for the runtime to drain, each watcher a function call per chunk.
 */

import { type ChunkSource, sourceOf, withSource } from "../upstream/body_source.ts";

/**
 * A stream that hands on `source`'s chunks as they are pulled: a chunk at hand is enqueued at once, otherwise one
 * `wait` is awaited. A failure `poll` throws errors the stream. Its chunks can be polled in turn.
 */
export function pipeStream(
  source: ChunkSource,
  cancel: (reason?: unknown) => Promise<void>,
): ReadableStream<Uint8Array> {
  let controller: ReadableStreamDefaultController<Uint8Array>;
  const step = (): Promise<void> | undefined => {
    try {
      const chunk = source.poll();
      if (chunk === undefined) return source.wait().then(step);
      if (chunk === null) controller.close();
      else controller.enqueue(chunk);
    } catch (error) {
      controller.error(error);
    }
  };
  const stream = new ReadableStream<Uint8Array>({
    start(opened) {
      controller = opened;
    },
    pull: step,
    cancel,
  }, { highWaterMark: 0 });
  return withSource(stream, source);
}

export function tapStream(
  source: ReadableStream<Uint8Array>,
  onChunk: (chunk: Uint8Array) => void,
  onEnd: (complete: boolean) => void,
): ReadableStream<Uint8Array> {
  let ended = false;
  const end = (complete: boolean) => {
    if (ended) return;
    ended = true;
    onEnd(complete);
  };
  const polled = sourceOf(source);
  const reader = source.getReader();
  if (polled) {
    const tapped: ChunkSource = {
      poll: () => {
        try {
          const chunk = polled.poll();
          if (chunk === null) end(true);
          else if (chunk) onChunk(chunk);
          return chunk;
        } catch (error) {
          end(false);
          throw error;
        }
      },
      wait: () => polled.wait(),
    };
    return pipeStream(tapped, (reason) => {
      end(false);
      return reader.cancel(reason).catch(() => {});
    });
  }
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          end(true);
          return controller.close();
        }
        onChunk(value);
        controller.enqueue(value);
      } catch (error) {
        end(false);
        controller.error(error);
      }
    },
    cancel(reason) {
      end(false);
      return reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/**
 * A pass-through that changes chunks as the client pulls them: `map` returns what to hand on for a chunk (nothing:
 * the next chunk is read), `flush` what to add at the end. Lighter than a `TransformStream` (one stream, no
 * writable side): a client that leaves cancels the source.
 */
export function mapStream(
  source: ReadableStream<Uint8Array>,
  map: (chunk: Uint8Array) => Uint8Array | undefined,
  flush: () => Uint8Array | undefined,
): ReadableStream<Uint8Array> {
  const polled = sourceOf(source);
  const reader = source.getReader();
  const cancel = (reason: unknown) => reader.cancel(reason).catch(() => {});
  if (polled) {
    let flushed = false;
    const mapped: ChunkSource = {
      poll: () => {
        for (;;) {
          const chunk = polled.poll();
          if (chunk === undefined) return undefined;
          if (chunk === null) {
            if (flushed) return null;
            flushed = true;
            return flush() ?? null;
          }
          const out = map(chunk);
          if (out) return out;
        }
      },
      wait: () => polled.wait(),
    };
    return pipeStream(mapped, cancel);
  }
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          const rest = flush();
          if (rest) controller.enqueue(rest);
          return controller.close();
        }
        const out = map(value);
        if (out) return controller.enqueue(out);
      }
    },
    cancel,
  }, { highWaterMark: 0 });
}
