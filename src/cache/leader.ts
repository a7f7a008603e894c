/**
 * Leading a flight: the miss of a request that no identical request here is answering becomes a flight that
 * requests arriving meanwhile follow (`coalesce.ts`). On a shared store the leader first takes the cross-instance
 * lock, or waits for the instance holding it, which may write the entry or relay its stream instead
 * (`across.ts`); in one process (the memory store) there is no one to ask, and the flight is led at once.
 */

import type { Clock } from "../core/clock.ts";
import type { GenerationRequest } from "../core/request.ts";
import { ClientGone } from "../errors.ts";
import type { Store } from "../store/store.ts";
import { type Across, acrossAtOnce, acrossInstances } from "./across.ts";
import type { CacheLookup } from "./cache.ts";
import { type Flights, lockKey, unlock } from "./coalesce.ts";
import { decodeEntry } from "./entry.ts";
import type { Found } from "./read.ts";
import { offerRelay } from "./relay_writer.ts";
import { replayAnswer } from "./replay.ts";
import { CacheTicket, type EntryPlace, Lead } from "./ticket.ts";
import type { CacheCounters, EntryWriter } from "./writer.ts";

export interface LeaderOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly flights: Flights;
  readonly writer: EntryWriter;
  readonly counters: CacheCounters;
  /** This instance's lock token, and how long a lock it takes lives. */
  readonly token: string;
  readonly lockTtlMs: number;
  /** `cache_params.max_entry_bytes`. */
  readonly maxBytes: number;
}

export class FlightLeader {
  readonly #options: LeaderOptions;

  constructor(options: LeaderOptions) {
    this.#options = options;
  }

  /** Gives back this instance's coalescing lock for `key`, off the response path. */
  release(key: string): void {
    this.#options.writer.track(unlock(this.#options.store, key, this.#options.token));
  }

  /**
   * Leads a new flight, with the cross-instance lock (taken by the read, or now; or after waiting for another
   * instance, which may instead have written the answer): a miss whose ticket shares the answer with followers.
   * With no other instance to ask, at once.
   */
  lead(
    key: string,
    request: GenerationRequest,
    entry: EntryPlace,
    found: Found,
  ): CacheLookup | Promise<CacheLookup> {
    if (request.signal.aborted) {
      if (found.locked) this.release(key);
      throw new ClientGone();
    }
    const flight = this.#options.flights.open(key);
    const lead = new Lead(
      flight,
      flight.attend(request.signal),
      () => this.#options.flights.close(key, flight),
      () => this.release(key),
    );
    if (found.locked) lead.lock = { key: lockKey(key), token: this.#options.token };
    const atOnce = acrossAtOnce(this.#options.store, request, found);
    if (!atOnce) return this.#across(key, request, entry, found, lead);
    try {
      return this.#led(key, request, entry, found, lead, atOnce);
    } catch (error) {
      lead.abandon();
      throw error;
    }
  }

  async #across(
    key: string,
    request: GenerationRequest,
    entry: EntryPlace,
    found: Found,
    lead: Lead,
  ): Promise<CacheLookup> {
    try {
      const outcome = await acrossInstances(key, request, found, lead, {
        store: this.#options.store,
        token: this.#options.token,
        lockTtlMs: this.#options.lockTtlMs,
        maxBytes: this.#options.maxBytes,
      });
      return this.#led(key, request, entry, found, lead, outcome);
    } catch (error) {
      lead.abandon();
      throw error;
    }
  }

  /** The led flight once other instances had their say: another's answer, or this request's miss ticket. */
  #led(
    key: string,
    request: GenerationRequest,
    entry: EntryPlace,
    found: Found,
    lead: Lead,
    outcome: Across,
  ): CacheLookup {
    const { flight } = lead;
    if (outcome.kind === "answer") {
      this.#options.counters.coalesced++;
      return outcome;
    }
    if (outcome.kind === "entry") {
      const answer = decodeEntry(outcome.text);
      if (answer) {
        flight.settle({ kind: "entry", answer });
        lead.stopAttending();
        lead.finish();
        this.#options.counters.coalesced++;
        return { kind: "answer", answer: replayAnswer(answer, "COALESCED", this.#options.clock.now()) };
      }
    } else lead.lock = outcome.locked ? { key: lockKey(key), token: this.#options.token } : undefined;
    // Holding the lock, a stream is offered to other instances that ask for it.
    if (lead.lock && request.stream) {
      const lock = { token: this.#options.token, ttlMs: this.#options.lockTtlMs };
      lead.relay = offerRelay({ store: this.#options.store, key, maxBytes: this.#options.maxBytes, lock });
    }
    this.#options.counters.misses++;
    const ticket = new CacheTicket({
      writer: this.#options.writer,
      maxBytes: this.#options.maxBytes,
      verdict: "MISS",
      entry,
      lead,
    });
    // The health read with the entry is current unless this request waited for another instance.
    const health = outcome.kind === "lead" && !outcome.waited ? found.health : undefined;
    return { kind: "miss", ticket, signal: flight.signal, health };
  }
}
