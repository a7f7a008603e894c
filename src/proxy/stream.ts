/**
 * Streaming pass-through. The first chunk is read before the client is committed to an endpoint (so a stream that
 * dies before its first byte can still fail over); after that every upstream chunk goes to the client as it
 * arrives, pulled at the client's pace (no buffering), and a client that leaves cancels the upstream body.
 * An upstream failure mid-stream ends the client's stream cleanly with an SSE error event.
 */

import type { Route } from "../upstream/providers.ts";

export type StreamEnd = "complete" | "failed" | "cancelled";

export interface StreamHooks {
  /** Called once when the stream ends, however it ends. */
  onEnd(end: StreamEnd, error?: unknown): void;
}

export type FirstChunk =
  | { readonly ok: true; readonly body: ReadableStream<Uint8Array> }
  | { readonly ok: false; readonly message: string; readonly timeout?: boolean };

const encoder = new TextEncoder();
const LF = 10;

/** The SSE error event each route's clients understand (the OpenAI SDKs raise it as an APIError). */
function errorEvent(route: Route, needsSeparator: boolean): Uint8Array {
  const error = {
    message: "The upstream connection failed mid-stream; the answer is incomplete",
    type: "server_error",
    param: null,
    code: "upstream_stream_error",
  };
  const prefix = needsSeparator ? "\n\n" : "";
  const event = route === "responses"
    ? `event: error\ndata: ${
      JSON.stringify({
        type: "error",
        code: error.code,
        message: error.message,
        param: null,
        sequence_number: -1,
      })
    }\n\n`
    : `data: ${JSON.stringify({ error })}\n\n`;
  return encoder.encode(prefix + event);
}

/** Waits for the upstream's first chunk; on success returns the client-facing stream. */
export async function openStream(
  upstream: Response,
  route: Route,
  hooks: StreamHooks,
): Promise<FirstChunk> {
  if (!upstream.body) return { ok: false, message: "empty stream" };
  const reader = upstream.body.getReader();
  let first: ReadableStreamReadResult<Uint8Array>;
  try {
    first = await reader.read();
  } catch (error) {
    reader.releaseLock();
    const timeout = error instanceof Error && error.name === "TimeoutError";
    return { ok: false, message: error instanceof Error ? error.name : "stream error", timeout };
  }
  if (first.done || !first.value) return { ok: false, message: "stream ended before its first byte" };

  // Whether the bytes sent so far end on an event boundary ("\n\n"), so an error event is not glued to a
  // half-sent one.
  let tail = 0;
  const remember = (chunk: Uint8Array) => {
    if (chunk.byteLength >= 2) {
      tail = (chunk[chunk.byteLength - 2] === LF ? 2 : 0) | (chunk.at(-1) === LF ? 1 : 0);
    } else if (chunk.byteLength === 1) tail = ((tail & 1) << 1) | (chunk[0] === LF ? 1 : 0);
  };
  let ended = false;
  const end = (how: StreamEnd, error?: unknown) => {
    if (ended) return;
    ended = true;
    hooks.onEnd(how, error);
  };
  const firstChunk = first.value;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      remember(firstChunk);
      controller.enqueue(firstChunk);
    },
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          end("complete");
          controller.close();
          return;
        }
        remember(value);
        controller.enqueue(value);
      } catch (error) {
        if (ended) return;
        controller.enqueue(errorEvent(route, tail !== 3));
        controller.close();
        end("failed", error);
      }
    },
    cancel(reason) {
      end("cancelled");
      return reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return { ok: true, body };
}
