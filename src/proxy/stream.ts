/**
 * Streaming pass-through. The first chunk is read before the client is committed to an endpoint (so a stream that
 * dies before its first byte can still fail over); after that every upstream chunk goes to the client as it
 * arrives, pulled at the client's pace (no buffering), and a client that leaves cancels the upstream body.
 * An upstream failure mid-stream ends the client's stream cleanly with an SSE error event.
 */

import { EventFramer } from "../sse/frame.ts";
import { type ChunkReader, chunkReader, sourceReader } from "./chunks.ts";
import { pipeStream } from "./tap.ts";
import { type BodySource, type ChunkSource, waitFor } from "../upstream/body_source.ts";
import type { Route } from "../core/route.ts";

export type StreamEnd = "complete" | "failed" | "cancelled";

export interface StreamHooks {
  /** Called once when the stream ends, however it ends. */
  onEnd(end: StreamEnd, error?: unknown): void;
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
  upstream: { readonly body: ReadableStream<Uint8Array> | null; readonly source?: BodySource },
  route: Route,
  hooks: StreamHooks,
): Promise<FirstChunk> {
  // The source when there is one: `body` would make a stream only to be read around.
  let reader: ChunkReader;
  if (upstream.source) reader = sourceReader(upstream.source);
  else if (upstream.body) reader = chunkReader(upstream.body);
  else return { ok: false, message: "empty stream" };
  // Only whole events are forwarded: a cut mid-event leaves nothing half-sent before the error event.
  const framer = new EventFramer();
  let first: Uint8Array | undefined;
  try {
    first = await firstEvents(reader, framer);
  } catch (error) {
    reader.releaseLock();
    const timeout = error instanceof Error && error.name === "TimeoutError";
    return { ok: false, message: error instanceof Error ? error.name : "stream error", timeout };
  }
  if (!first) return { ok: false, message: "stream ended before its first byte" };
  return { ok: true, body: passThrough(first, reader, framer, route, hooks) };
}

/** The first whole events (or, for a stream that ends before a blank line, what it sent); none for an empty one. */
async function firstEvents(reader: ChunkReader, framer: EventFramer): Promise<Uint8Array | undefined> {
  while (true) {
    const value = reader.poll();
    if (value === undefined) {
      await waitFor(reader);
      continue;
    }
    if (value === null) return framer.rest();
    const events = framer.push(value);
    if (events) return events;
  }
}

/**
 * The client's stream: `first`, then whole events as the client pulls them, then an error event if it is cut. A
 * pull whose events are buffered enqueues them at once; otherwise it waits for one read of the upstream and
 * looks again. No async function and no promise beyond that read per event: a stream's events are most of what
 * the proxy does, and what they allocate is what its garbage collector works through. The watchers stacked on
 * it (`tap.ts`) read its events the same way, so the stack stays one stream layer.
 */
function passThrough(
  first: Uint8Array,
  reader: ChunkReader,
  framer: EventFramer,
  route: Route,
  hooks: StreamHooks,
): ReadableStream<Uint8Array> {
  let ended = false;
  const end = (how: StreamEnd, error?: unknown) => {
    if (ended) return;
    ended = true;
    hooks.onEnd(how, error);
  };
  let next: Uint8Array | undefined = first;
  const events: ChunkSource = {
    poll: () => {
      if (next) {
        const chunk = next;
        next = undefined;
        return chunk;
      }
      if (ended) return null;
      try {
        while (true) {
          const value = reader.poll();
          if (value === undefined) return undefined;
          if (value === null) {
            const rest = framer.rest();
            end("complete");
            return rest ?? null;
          }
          const whole = framer.push(value);
          if (whole) return whole;
        }
      } catch (error) {
        if (ended) return null;
        end("failed", error);
        return errorEvent(route);
      }
    },
    wait: (then) => reader.wait(then),
  };
  return pipeStream(events, (reason) => {
    end("cancelled");
    return reader.cancel(reason).catch(() => {});
  });
}
