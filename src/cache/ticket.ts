/**
 * What a cache miss leaves for the record stage. `keep(answer)` stamps the cache's verdict on the answer, stores it
 * when it is a complete success (a JSON answer as it is handed back, a stream from its recorder's `flush`), and
 * shares it with the requests following this one's flight; `drop()` says the attempts failed: followers go their
 * own way and the coalescing lock goes back.
 */

import { type Answer, type CacheVerdict, withMeta } from "../core/answer.ts";
import type { GenerationRequest } from "../core/request.ts";
import { Broadcast } from "./broadcast.ts";
import type { Flight } from "./coalesce.ts";
import type { CacheControl } from "./control.ts";
import type { RelayOffer } from "./relay_writer.ts";
import type { EntryWriter, HeldLock, JsonBody } from "./writer.ts";

/** A flight this request leads: closed (and its lock given back) once its answer is stored or given up. */
export class Lead {
  readonly flight: Flight;
  /** The cross-instance lock this leader holds, if any. */
  lock: HeldLock | undefined;
  /** The offer of a streamed answer to other instances (`relay_writer.ts`); made when the lock is held. */
  relay: RelayOffer | undefined;
  readonly #close: () => void;
  readonly #release: () => void;
  readonly #stopAttending: () => void;
  #finished = false;

  constructor(flight: Flight, stopAttending: () => void, close: () => void, release: () => void) {
    this.flight = flight;
    this.#stopAttending = stopAttending;
    this.#close = close;
    this.#release = release;
  }

  /** The leader's own client no longer counts for the flight: its answer is decided. */
  stopAttending(): void {
    this.#stopAttending();
  }

  /** The lookup failed before a ticket was made: followers go their own way, the flight closes, the lock goes back. */
  abandon(): void {
    this.#stopAttending();
    this.flight.settle(null);
    this.finish();
  }

  /** Closes the flight and gives back the lock, unless the entry's write already did (`lockReleased`). */
  finish = (lockReleased = false): void => {
    if (this.#finished) return;
    this.#finished = true;
    this.relay?.withdraw();
    this.#close();
    if (this.lock && !lockReleased) this.#release();
  };
}

/** Where a complete answer is stored: its entry's key and cache control, and the request it answers. */
export interface EntryPlace {
  readonly key: string;
  readonly control: CacheControl;
  readonly request: GenerationRequest;
  /** The cache's `clears` count when the request looked up (an answer is not stored once it moved). */
  readonly clears: number;
}

export interface TicketOptions {
  readonly verdict: Extract<CacheVerdict, "MISS" | "BYPASS">;
  /** Where a complete answer is stored; absent when it is not (cache off, `no-store`). */
  readonly entry?: EntryPlace;
  readonly lead?: Lead;
  readonly writer: EntryWriter;
  /** Largest stream kept for followers that join late (`cache_params.max_entry_bytes`). */
  readonly maxBytes: number;
}

export class CacheTicket {
  readonly verdict: TicketOptions["verdict"];
  readonly #options: TicketOptions;

  constructor(options: TicketOptions) {
    this.verdict = options.verdict;
    this.#options = options;
  }

  /** The record stage: see the module comment. Returns the answer to hand out. */
  keep(answer: Answer): Answer {
    const stamped = withMeta(answer, { cache: this.verdict });
    const { entry, lead } = this.#options;
    lead?.stopAttending();
    const body = stamped.body;
    if (!entry || stamped.status !== 200 || body.kind === "bytes") {
      this.drop();
      return stamped;
    }
    if (body.kind === "json") {
      lead?.flight.settle({ kind: "json", headers: stamped.headers, meta: stamped.meta, bytes: body.bytes });
      this.#keepJson(entry, stamped, body);
      return stamped;
    }
    // Holding the lock, the entry's write gives it back in the same step, as for JSON.
    const recorded = this.#options.writer.stream(body.stream, entry, stamped, lead?.finish, lead?.lock);
    if (!lead) return { ...stamped, body: { kind: "stream", stream: recorded } };
    const broadcast = new Broadcast(recorded, {
      maxBytes: this.#options.maxBytes,
      // A stream that ended is finished by its recorder, once stored; one cut short is finished here.
      onEnd: (end) => {
        if (end !== "done") lead.finish();
      },
    });
    lead.flight.settle({ kind: "stream", headers: stamped.headers, meta: stamped.meta, broadcast });
    lead.relay?.attach(broadcast, { headers: stamped.headers, meta: stamped.meta });
    return { ...stamped, body: { kind: "stream", stream: broadcast.join()! } };
  }

  /** The attempts failed (or the answer is not shared): followers go their own way, the lock goes back. */
  drop(): void {
    this.#options.lead?.abandon();
  }

  #keepJson(entry: EntryPlace, answer: Answer, body: JsonBody): void {
    const { writer, lead } = this.#options;
    // Holding the lock, the entry's write gives it back in the same step (one Redis round trip, not two).
    writer.json(entry, answer, body, lead?.finish, lead?.lock);
  }
}
