/**
 * A follower's side of a relay (see `relay.ts`): another instance's streamed answer, read live from Redis with
 * short non-blocking reads (XREAD without BLOCK, on the shared connection: a blocking read there would hold up
 * every other command). A read that finds something is followed by the next at once; one that finds nothing
 * waits 1, 2, 4 ... up to `POLL_MAX_MS` before the next. Reads happen only as this instance's clients pull, so a
 * slow instance falls behind, it never holds the leader up.
 *
 * The stream ends as the leader's did; or, when the relay goes silent for `SILENCE_MS` (the leading instance
 * died) or this reader fell behind what the relay keeps, with an error event the SDKs raise.
 */

import type { Answer } from "../core/answer.ts";
import type { GenerationRequest } from "../core/request.ts";
import type { Route } from "../core/route.ts";
import { Broadcast } from "./broadcast.ts";
import { followerAnswer } from "./coalesce.ts";
import type { Lead } from "./ticket.ts";
import type { RelayEntry, Store } from "../store/store.ts";
import {
  pause,
  POLL_MAX_MS,
  READ_COUNT,
  type RelayHead,
  relayLostEvent,
  relayStream,
  SILENCE_MS,
} from "./relay.ts";

export interface OpenedRelay {
  readonly head: RelayHead;
  readonly stream: ReadableStream<Uint8Array>;
}

/**
 * Opens relay `id` of cache key `key` from its first entry; null when it cannot be joined (trimmed past its
 * start, or silent): the caller then goes upstream itself, no byte having been sent.
 */
export async function openRelay(
  store: Store,
  key: string,
  id: string,
  route: Route,
  signal: AbortSignal,
): Promise<OpenedRelay | null> {
  const reader = new RelayReader(store, relayStream(key, id), signal);
  const first = await reader.next();
  const head = first?.fields.n === "0" ? parseHead(first.fields.m) : null;
  if (!head) {
    reader.stop();
    return null;
  }
  let expected = 1;
  const lost = (controller: ReadableStreamDefaultController<Uint8Array>) => {
    controller.enqueue(relayLostEvent(route));
    controller.close();
    reader.stop();
  };
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const entry = await reader.next();
      if (!entry) return lost(controller);
      const end = entry.fields.e;
      if (end !== undefined) {
        if (end !== "done") return lost(controller);
        reader.stop();
        return controller.close();
      }
      if (entry.fields.n !== String(expected)) return lost(controller);
      expected++;
      if (entry.data && entry.data.byteLength > 0) controller.enqueue(entry.data);
    },
    cancel: () => reader.stop(),
  }, { highWaterMark: 0 });
  return { head, stream };
}

class RelayReader {
  readonly #store: Store;
  readonly #key: string;
  readonly #stop = new AbortController();
  #after = "0";
  #queue: RelayEntry[] = [];

  constructor(store: Store, key: string, signal: AbortSignal) {
    this.#store = store;
    this.#key = key;
    signal.addEventListener("abort", () => this.stop(), { once: true, signal: this.#stop.signal });
  }

  stop(): void {
    this.#stop.abort();
  }

  /** The next entry that is not a heartbeat; null once stopped or after `SILENCE_MS` without any entry. */
  async next(): Promise<RelayEntry | null> {
    while (true) {
      const entry = this.#queue.shift();
      if (entry) {
        if (entry.fields.h === undefined) return entry;
        continue;
      }
      if (!await this.#read()) return null;
    }
  }

  /** Reads until some entries came (true), or until stopped or silent too long (false). */
  async #read(): Promise<boolean> {
    const deadline = performance.now() + SILENCE_MS;
    const signal = this.#stop.signal;
    let wait = 1;
    while (!signal.aborted) {
      try {
        const entries = await this.#store.readRelay!(this.#key, this.#after, READ_COUNT);
        if (entries.length > 0) {
          this.#queue = entries;
          this.#after = entries[entries.length - 1].id;
          return true;
        }
      } catch {
        // Redis away or slow: the deadline decides
      }
      if (performance.now() >= deadline) return false;
      await pause(wait, signal);
      wait = Math.min(wait * 2, POLL_MAX_MS);
    }
    return false;
  }
}

function parseHead(text: string | undefined): RelayHead | null {
  if (text === undefined) return null;
  try {
    const head = JSON.parse(text) as RelayHead;
    return head && typeof head.headers === "object" && typeof head.meta === "object" ? head : null;
  } catch {
    return null;
  }
}

/**
 * Follows relay `id` as the leader of this instance's flight for `key`: the flight shares it (one `Broadcast`, so
 * this instance's clients make one reader of Redis), and this request gets it, marked COALESCED. Null when it
 * cannot be joined.
 */
export async function followRelay(
  store: Store,
  key: string,
  id: string,
  request: GenerationRequest,
  lead: Lead,
  maxBytes: number,
): Promise<Answer | null> {
  const opened = await openRelay(store, key, id, request.route, lead.flight.abortSignal);
  if (!opened) return null;
  const broadcast = new Broadcast(opened.stream, { maxBytes, onEnd: () => lead.finish() });
  const shared = { kind: "stream", ...opened.head, broadcast } as const;
  lead.flight.settle(shared);
  lead.stopAttending();
  return followerAnswer(shared);
}
