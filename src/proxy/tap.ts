/**
 * Pass-throughs of a byte stream, one stream each (a `TransformStream` is two). `tapStream` watches it without
 * buffering: each chunk is handed on as the client pulls it, and told to `onChunk` on the way; `onEnd` is told
 * once whether the stream ran to its end (true) or was cancelled or failed (false). A client that leaves cancels
 * the source.
 */

export function tapStream(
  source: ReadableStream<Uint8Array>,
  onChunk: (chunk: Uint8Array) => void,
  onEnd: (complete: boolean) => void,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  let ended = false;
  const end = (complete: boolean) => {
    if (ended) return;
    ended = true;
    onEnd(complete);
  };
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
  const reader = source.getReader();
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
    cancel: (reason) => reader.cancel(reason).catch(() => {}),
  }, { highWaterMark: 0 });
}
