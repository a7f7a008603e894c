/**
 * Response bodies of the simulated upstream that misbehave on purpose or take their time: SSE frames written one
 * per chunk with an optional pause, a cut connection, and an abortable pause. Cancelling a body stops its timers.
 */

const encoder = new TextEncoder();

export interface FrameStreamOptions {
  /** Pause before each frame after the first. */
  readonly delayMs: number;
  /** Error the stream after this many frames, never sending the last one (a cut connection). */
  readonly cutAfter?: number;
  /** Aborted when the server closes: a paused stream then errors at once. */
  readonly closing: AbortSignal;
  /** Called when the reader cancels the body before its end (the client went away). */
  readonly onCancel?: () => void;
}

/** The frames as a byte stream, one frame per chunk so each reaches the client as its own write. */
export function frameStream(
  frames: readonly string[],
  options: FrameStreamOptions,
): ReadableStream<Uint8Array> {
  const { delayMs, cutAfter, closing, onCancel } = options;
  const limit = cutAfter === undefined ? frames.length : Math.max(0, Math.min(cutAfter, frames.length - 1));
  let index = 0;
  const send = (controller: ReadableStreamDefaultController<Uint8Array>) => {
    if (index >= limit) return controller.error(new Error("simulated upstream cut the connection"));
    controller.enqueue(encoder.encode(frames[index++]));
    if (index === frames.length) controller.close();
  };
  // The hot path (no delay) stays synchronous: no promise and no timer per frame.
  if (delayMs <= 0) return new ReadableStream<Uint8Array>({ pull: send, cancel: onCancel });
  const cancelled = new AbortController();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (index > 0 && index < limit) {
        await pause(delayMs, cancelled.signal, closing);
        if (cancelled.signal.aborted) return;
        if (closing.aborted) return controller.error(new Error("simulated upstream closed"));
      }
      send(controller);
    },
    cancel() {
      cancelled.abort();
      onCancel?.();
    },
  });
}

/** A body that fails before its first byte: the client sees the headers, then the connection drops. */
export function cutStream(): ReadableStream<Uint8Array> {
  return new ReadableStream({
    pull(controller) {
      controller.error(new Error("simulated upstream cut the connection"));
    },
  });
}

/** Resolves after `ms` (never when Infinity) or as soon as one of the signals aborts. */
export function pause(ms: number, a: AbortSignal, b?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (a.aborted || b?.aborted) return resolve();
    const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
    function done() {
      clearTimeout(timer);
      a.removeEventListener("abort", done);
      b?.removeEventListener("abort", done);
      resolve();
    }
    a.addEventListener("abort", done);
    b?.addEventListener("abort", done);
  });
}
