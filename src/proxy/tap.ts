/**
 * A pass-through that watches a byte stream without buffering: each chunk is handed on as the client pulls it, and
 * told to `onChunk` on the way; `onEnd` is told once whether the stream ran to its end (true) or was cancelled or
 * failed (false). A client that leaves cancels the source.
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
