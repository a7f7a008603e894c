/**
 * Streamed coalescing across instances: the keys, bounds and messages shared by the two sides. The instance that
 * leads a streamed flight (it holds `coalesce:{<key>}`) relays its answer through a Redis Stream once another
 * instance asks for it on the `relay-want` channel (`relay_wants.ts`, `relay_writer.ts`); the others read that
 * stream live and serve it to their own clients (`relay_reader.ts`). Keys, all with the cache key as hash tag
 * (one slot on a Cluster):
 *
 * - `relay:{<key>}`        the pointer: the relay's id; `pending` (asked, the upstream has not answered yet); or
 *                          `closed` (the stream is too long to join any more)
 * - `relay:{<key>}:<id>`   the relay: entry `n`=0 carries the answer's headers and metadata (`m`), entries
 *                          `n`=1.. its bytes (`d`) in order, `h` entries are heartbeats, `e` ends it (`done` or
 *                          `cut`). It keeps at most `cache_params.max_entry_bytes` of bytes: older entries are
 *                          trimmed, after which nobody may join and a reader that fell behind the trim gets an
 *                          error event.
 *
 * Every key lives `RELAY_TTL_MS` past its last write.
 */

import type { AnswerMeta } from "../core/answer.ts";
import type { Route } from "../core/route.ts";
import { startTimer } from "../util/timer.ts";

/** How long a relay (and its pointer) lives past its last write. */
export const RELAY_TTL_MS = 60_000;
/** How often a follower asks again for a relay while none has started (pub/sub may drop a message). */
export const ASK_AGAIN_MS = 250;
/** A relay that has nothing to send says it is alive this often. */
export const HEARTBEAT_MS = 1000;
/** A reader that sees no entry (not even a heartbeat) this long ends its clients' streams with an error event. */
export const SILENCE_MS = 5000;
/** Longest pause between two reads of a relay that had nothing new. */
export const POLL_MAX_MS = 16;
/** Entries one read takes at most. */
export const READ_COUNT = 128;

export const CLOSED = "closed";
export const PENDING = "pending";
/** How long a leader's `pending` lives unless said again: a follower that sees it go knows the leader died. */
export const PENDING_MS = 1500;

export const relayPointer = (key: string): string => `relay:{${key}}`;
export const relayStream = (key: string, id: string): string => `relay:{${key}}:${id}`;

/** What a follower needs besides the bytes: the leader's answer headers and metadata. */
export interface RelayHead {
  readonly headers: Readonly<Record<string, string>>;
  readonly meta: AnswerMeta;
}

const encoder = new TextEncoder();

/** The code of the error event that ends a follower's stream when the relay it reads stops. */
export const RELAY_LOST_CODE = "coalesced_stream_lost";

/**
 * The SSE error event that ends a follower's stream when the relay it reads stops (the leading instance died, or
 * this reader fell too far behind): as each route's clients read errors, so the OpenAI SDKs raise an APIError.
 */
export function relayLostEvent(route: Route): Uint8Array {
  const message = "The instance streaming this shared answer stopped before it ended; retry the request";
  const code = RELAY_LOST_CODE;
  const event = route === "responses"
    ? `event: error\ndata: ${
      JSON.stringify({ type: "error", code, message, param: null, sequence_number: -1 })
    }\n\n`
    : `data: ${JSON.stringify({ error: { message, type: "server_error", param: null, code } })}\n\n`;
  return encoder.encode(event);
}

/** Waits `ms`, or less when `signal` aborts; leaves no timer behind. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      timer.cancel();
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = startTimer(Math.max(0, ms), done);
    signal.addEventListener("abort", done, { once: true });
  });
}
