/**
 * Serving a cached answer: a JSON body byte for byte, or a stream as SSE with the recorded events in their
 * order and boundaries (one chunk per event, pulled at the client's pace), so the SDKs read it as they read
 * the original.
 */

import type { Answer } from "../core/answer.ts";
import { type CachedAnswer, eventsOf } from "./entry.ts";

export type ReplayStatus = "HIT" | "COALESCED";

const encoder = new TextEncoder();

/** The stream's events as a byte stream, one chunk per event. */
export function replayStream(answer: CachedAnswer): ReadableStream<Uint8Array> {
  const events = eventsOf(answer);
  let next = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next < events.length) controller.enqueue(encoder.encode(events[next++]));
      if (next >= events.length) controller.close();
    },
  }, { highWaterMark: 0 });
}

/** The endpoint a cached answer is reported as coming from. */
export const replayedEndpoint = (answer: CachedAnswer): string => answer.endpoint ?? "cache";

/** A cached answer as the pipeline's answer, marked with how it was found; `now` (epoch ms) gives its `age`. */
export function replayAnswer(answer: CachedAnswer, status: ReplayStatus, now: number): Answer {
  const headers: Record<string, string> = {
    "content-type": answer.contentType,
    "age": String(Math.max(0, Math.floor((now - answer.storedAt) / 1000))),
  };
  const meta = { endpoint: replayedEndpoint(answer), attempts: 0, cache: status };
  if (!answer.stream) return { status: 200, headers, body: { kind: "bytes", bytes: answer.body }, meta };
  return { status: 200, headers, body: { kind: "stream", stream: replayStream(answer) }, meta };
}
