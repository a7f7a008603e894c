/**
 * Serving a cached answer: a JSON body byte for byte, or a stream as SSE with the recorded events in their
 * order and boundaries (one chunk per event, pulled at the client's pace), so the SDKs read it as they read
 * the original.
 */

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

/**
 * The response for a cached answer, marked with how it was found; `now` (epoch ms) gives its `age`. Headers as a
 * plain record: the Response validates them once.
 */
export function replayResponse(
  answer: CachedAnswer,
  status: ReplayStatus,
  now: number,
  requestId: string,
): Response {
  const headers: Record<string, string> = {
    "content-type": answer.contentType,
    "x-llmproxy-cache": status,
    "x-llmproxy-endpoint": replayedEndpoint(answer),
    "x-llmproxy-attempts": "0",
    "x-request-id": requestId,
    "age": String(Math.max(0, Math.floor((now - answer.storedAt) / 1000))),
  };
  if (!answer.stream) return new Response(answer.body, { status: 200, headers });
  headers["cache-control"] = "no-cache";
  headers["x-accel-buffering"] = "no";
  return new Response(replayStream(answer), { status: 200, headers });
}
