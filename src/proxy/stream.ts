/**
 * Streaming pass-through. The first chunk is read before the client is committed to an endpoint (so a stream that
 * dies before its first byte can still fail over); after that every upstream chunk goes to the client as it
 * arrives, pulled at the client's pace (no buffering), and a client that leaves cancels the upstream body.
 * An upstream failure mid-stream ends the client's stream cleanly with an SSE error event.
 */

import { EventFramer } from "../sse/frame.ts";
import { chunkReader } from "./chunks.ts";
import type { Route } from "../core/route.ts";

export type StreamEnd = "complete" | "failed" | "cancelled";

export interface StreamHooks {
  /** Called once when the stream ends, however it ends. */
  onEnd(end: StreamEnd, error?: unknown): void;
  /** Sees every chunk forwarded to the client (for watchers such as a tpm budget's usage reader). */
  onChunk?(chunk: Uint8Array): void;
}

export type FirstChunk =
  | { readonly ok: true; readonly body: ReadableStream<Uint8Array> }
  | { readonly ok: false; readonly message: string; readonly timeout?: boolean };

const encoder = new TextEncoder();

/** The SSE error event each route's clients understand (the OpenAI SDKs raise it as an APIError). */
function errorEvent(route: Route): Uint8Array {
  const error = {
    message: "The upstream connection failed mid-stream; the answer is incomplete",
    type: "server_error",
    param: null,
    code: "upstream_stream_error",
  };
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
  return encoder.encode(event);
}

/** Waits for the upstream's first chunk; on success returns the client-facing stream. */
export async function openStream(
  upstream: Response,
  route: Route,
  hooks: StreamHooks,
): Promise<FirstChunk> {
  if (!upstream.body) return { ok: false, message: "empty stream" };
  const reader = chunkReader(upstream.body);
  // Only whole events are forwarded: a cut mid-event leaves nothing half-sent before the error event.
  const framer = new EventFramer();
  let first: Uint8Array | undefined;
  try {
    while (!first) {
      const value = await reader.read();
      if (!value) {
        first = framer.rest();
        break;
      }
      first = framer.push(value);
    }
  } catch (error) {
    reader.releaseLock();
    const timeout = error instanceof Error && error.name === "TimeoutError";
    return { ok: false, message: error instanceof Error ? error.name : "stream error", timeout };
  }
  if (!first) return { ok: false, message: "stream ended before its first byte" };

  let ended = false;
  const end = (how: StreamEnd, error?: unknown) => {
    if (ended) return;
    ended = true;
    hooks.onEnd(how, error);
  };
  const firstChunk = first;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      hooks.onChunk?.(firstChunk);
      controller.enqueue(firstChunk);
    },
    async pull(controller) {
      try {
        while (true) {
          const value = await reader.read();
          if (!value) {
            const rest = framer.rest();
            if (rest) {
              hooks.onChunk?.(rest);
              controller.enqueue(rest);
            }
            end("complete");
            controller.close();
            return;
          }
          const events = framer.push(value);
          if (events) {
            hooks.onChunk?.(events);
            controller.enqueue(events);
            return;
          }
        }
      } catch (error) {
        if (ended) return;
        controller.enqueue(errorEvent(route));
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
