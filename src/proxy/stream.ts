/**
 * Streaming pass-through. The first chunk is read before the client is committed to an endpoint (so a stream that
 * dies before its first byte can still fail over); after that every upstream chunk goes to the client as it
 * arrives, pulled at the client's pace (no buffering), and a client that leaves cancels the upstream body.
 * An upstream failure mid-stream ends the client's stream cleanly with an SSE error event.
 */

import { EventFramer } from "../sse/frame.ts";
import { type ChunkReader, chunkReader, sourceReader } from "./chunks.ts";
import { type PipeSource, pipeStream } from "./tap.ts";
import type { BodySource } from "../upstream/body_source.ts";
import type { Route } from "../core/route.ts";
import { upstreamErrorFirst, type UpstreamFault } from "./first_error.ts";

export type StreamEnd = "complete" | "failed" | "cancelled";

export interface StreamHooks {
  /** Called once when the stream ends, however it ends. */
  onEnd(end: StreamEnd, error?: unknown): void;
}

export type FirstChunk =
  | { readonly ok: true; readonly body: ReadableStream<Uint8Array> }
  | {
    readonly ok: false;
    readonly message: string;
    readonly timeout?: boolean;
    /** The upstream's own error, when the stream began with one. */
    readonly fault?: UpstreamFault;
  };

const encoder = new TextEncoder();

/** The code of the error event that ends a stream the upstream cut. */
export const STREAM_CUT_CODE = "upstream_stream_error";

/** The SSE error event each route's clients understand (the OpenAI SDKs raise it as an APIError). */
function errorEvent(route: Route): Uint8Array {
  const error = {
    message: "The upstream connection failed mid-stream; the answer is incomplete",
    type: "server_error",
    param: null,
    code: STREAM_CUT_CODE,
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

/**
 * The client-facing stream once the upstream's first whole events are there, or why there are none. Not async when
 * they are at hand (the usual case: they came in the read that brought the answer's head), so the answer goes on
 * without waiting for a turn of the event loop.
 */
export function openStream(
  upstream: { readonly body: ReadableStream<Uint8Array> | null; readonly source?: BodySource },
  route: Route,
  hooks: StreamHooks,
): FirstChunk | Promise<FirstChunk> {
  // The source when there is one: `body` would make a stream only to be read around.
  let reader: ChunkReader;
  if (upstream.source) reader = sourceReader(upstream.source);
  else if (upstream.body) reader = chunkReader(upstream.body);
  else return { ok: false, message: "empty stream" };
  // Only whole events are forwarded: a cut mid-event leaves nothing half-sent before the error event.
  const framer = new EventFramer();
  let first: Uint8Array | null | undefined;
  try {
    first = firstEvents(reader, framer);
  } catch (error) {
    return failedFirst(reader, error);
  }
  if (first === undefined) return awaitFirst(new EventRelay(reader, framer, route, hooks));
  return opened(first, new EventRelay(reader, framer, route, hooks));
}

/**
 * The first whole events if they are buffered (or, for a stream that ends before a blank line, what it sent); null
 * for a stream that ended with none; undefined when more must be read.
 */
function firstEvents(reader: ChunkReader, framer: EventFramer): Uint8Array | null | undefined {
  for (;;) {
    const value = reader.poll();
    if (value === undefined) return undefined;
    if (value === null) return framer.rest() ?? null;
    const events = framer.push(value);
    if (events) return events;
  }
}

/**
 * The first events once they have been read. A promise settled from the reader's callback, not an async function:
 * a stream waiting for its first event keeps no suspended frame (issue 22.4c: a burst of new streams promotes it).
 */
function awaitFirst(relay: EventRelay): Promise<FirstChunk> {
  const { reader, framer } = relay;
  return new Promise<FirstChunk>((resolve) => {
    // Looks again (the first time finding nothing new), then waits for the next read.
    const next = (): void => {
      let first: Uint8Array | null | undefined;
      try {
        first = firstEvents(reader, framer);
        if (first === undefined) return reader.wait(next);
      } catch (error) {
        return resolve(failedFirst(reader, error));
      }
      resolve(opened(first, relay));
    };
    next();
  });
}

function failedFirst(reader: ChunkReader, error: unknown): FirstChunk {
  reader.releaseLock();
  const timeout = error instanceof Error && error.name === "TimeoutError";
  return { ok: false, message: error instanceof Error ? error.name : "stream error", timeout };
}

function opened(first: Uint8Array | null, relay: EventRelay): FirstChunk {
  if (!first) return { ok: false, message: "stream ended before its first byte" };
  // The upstream's own error first: the client has had nothing yet, so the stream is given up and fails over.
  const fault = upstreamErrorFirst(first, relay.route);
  if (fault !== undefined) {
    relay.reader.cancel().catch(() => {});
    return { ok: false, message: fault.cause, fault };
  }
  relay.first(first);
  return { ok: true, body: pipeStream(relay) };
}

/**
 * The client's stream's source: `first`, then whole events as the client pulls them, then an error event if the
 * upstream is cut. Events buffered are handed on at once; otherwise it waits for one read of the upstream and
 * looks again. No async function and no promise beyond that read per event: a stream's events are most of what
 * the proxy does, and what they allocate is what its garbage collector works through. The watchers stacked on
 * it (`tap.ts`) read its events the same way, so the stack stays one stream layer. One object for as long as the
 * stream is open, not a set of closures.
 */
class EventRelay implements PipeSource {
  #next: Uint8Array | undefined;
  #ended = false;

  constructor(
    readonly reader: ChunkReader,
    readonly framer: EventFramer,
    readonly route: Route,
    private readonly hooks: StreamHooks,
  ) {}

  /** The first events, handed on before anything else. */
  first(events: Uint8Array): void {
    this.#next = events;
  }

  poll(): Uint8Array | null | undefined {
    const next = this.#next;
    if (next) {
      this.#next = undefined;
      return next;
    }
    if (this.#ended) return null;
    try {
      for (;;) {
        const value = this.reader.poll();
        if (value === undefined) return undefined;
        if (value === null) {
          const rest = this.framer.rest();
          this.#end("complete");
          return rest ?? null;
        }
        const whole = this.framer.push(value);
        if (whole) return whole;
      }
    } catch (error) {
      if (this.#ended) return null;
      this.#end("failed", error);
      return errorEvent(this.route);
    }
  }

  wait(then: () => void): void {
    this.reader.wait(then);
  }

  /** The client left: the upstream body is given up. */
  cancel(reason?: unknown): Promise<void> {
    this.#end("cancelled");
    return this.reader.cancel(reason).catch(() => {});
  }

  #end(how: StreamEnd, error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.hooks.onEnd(how, error);
  }
}
