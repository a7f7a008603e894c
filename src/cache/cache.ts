/**
 * The cache stages of the pipeline. `lookup` answers from the cache (HIT), from an identical request in flight
 * here or on another instance (COALESCED), or returns a miss (MISS; BYPASS when the request said `no-cache` or the
 * cache is off) whose ticket the record stage uses to store the answer when it is a complete success.
 *
 * Writes are off the response path (nothing waits for Redis): a JSON answer is stored as it is handed back (on
 * the memory store at once), a stream from the recorder's `flush` once its terminal event went by. A write that
 * fails is logged at warn and changes nothing for the client. Entries live in the store under `cache:{<sha256>}`,
 * so `clear()` is one `deleteByPrefix("cache:")`.
 *
 * On a shared store (Redis) a lookup costs one round trip, hit or miss: a JSON request's entry read also takes the
 * coalescing lock when the entry is absent (one script), and the group's endpoint health is read alongside, for
 * the plan to use on a miss.
 */

import type { Answer } from "../core/answer.ts";
import type { Clock } from "../core/clock.ts";
import type { Admitted, GenerationRequest } from "../core/request.ts";
import type { GroupConfig, Settings } from "../config/config.ts";
import { ClientGone } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { EndpointHealth, Store } from "../store/store.ts";
import type { AbortLike } from "../core/abort_like.ts";
import { type Flight, Flights, type Followed, followerAnswer } from "./coalesce.ts";
import { type CacheControl, parseCacheControl } from "./control.ts";
import { CACHE_PREFIX, type CachedAnswer } from "./entry.ts";
import { type CacheFigures, StoreUsage } from "./figures.ts";
import { cacheKeyAsync } from "./key.ts";
import { sizeOf } from "../util/heavy.ts";
import { EntryReader, type Found } from "./read.ts";
import { replayAnswer, type ReplayStatus } from "./replay.ts";
import { FlightLeader } from "./leader.ts";
import { CacheTicket, type EntryPlace } from "./ticket.ts";
import { type CacheCounters, EntryWriter, newCounters } from "./writer.ts";

export { CACHE_PREFIX } from "./entry.ts";
export type { CacheFigures } from "./figures.ts";
export type { CacheCounters } from "./writer.ts";

export type { CacheTicket } from "./ticket.ts";

/** What the lookup stage found: an answer (HIT, COALESCED), or a miss for the plan and attempts to answer. */
export type CacheLookup =
  | { readonly kind: "answer"; readonly answer: Answer }
  | {
    readonly kind: "miss";
    /** For the record stage: stores and shares the answer (`keep`), or gives up the flight (`drop`). */
    readonly ticket: CacheTicket;
    /** The upstream call's signal: a led flight's is aborted only once every request following it left. */
    readonly signal: AbortLike;
    /** The group's endpoint health, read alongside the entry on a shared store (for the plan). */
    readonly health?: Promise<EndpointHealth[]>;
  };

export interface CacheOptions {
  readonly store: Store;
  readonly settings: Settings;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Counters to continue (a config reload); default fresh ones. */
  readonly counters?: CacheCounters;
  /**
   * The writes still running of the cache this one replaces (a config reload; a stream that began before it writes
   * its entry when it ends), tracked with this one's, so `settled()` waits for every generation's.
   */
  readonly writes?: Set<Promise<unknown>>;
  /**
   * Reads a group's endpoint health. On a shared store a lookup reads it at the same time as the entry, so a miss
   * costs one Redis round trip and the balancer does not read it again; undefined when this process holds it (the
   * plan reads it at once).
   */
  readonly readHealth?: (group: GroupConfig) => Promise<EndpointHealth[]> | undefined;
}

/**
 * Longest a cross-instance coalescing lock lives, and so the longest a follower waits for another instance.
 */
const MAX_LOCK_MS = 30_000;
/** Rounds a follower whose leader failed may join a new flight before going upstream on its own. */
const FOLLOW_ROUNDS = 3;

export class ResponseCache {
  readonly #store: Store;
  readonly #settings: Settings;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #flights = new Flights();
  readonly #writer: EntryWriter;
  readonly #reader: EntryReader;
  readonly #leader: FlightLeader;
  readonly #usage: StoreUsage;
  readonly #token = crypto.randomUUID();
  readonly #lockTtlMs: number;
  readonly #counts: CacheCounters;
  /** The ticket of every request while the cache is off: it stamps BYPASS, stores and shares nothing. */
  readonly #bypass: CacheTicket;

  constructor(options: CacheOptions) {
    this.#store = options.store;
    this.#settings = options.settings;
    this.#logger = options.logger;
    this.#clock = options.clock;
    this.#counts = options.counters ?? newCounters();
    this.#writer = new EntryWriter({ ...options, counters: this.#counts });
    this.#lockTtlMs = Math.min(MAX_LOCK_MS, options.settings.httpTimeoutMs);
    this.#reader = new EntryReader({ ...options, token: this.#token, lockTtlMs: this.#lockTtlMs });
    this.#usage = new StoreUsage(options.store, options.clock);
    this.#bypass = new CacheTicket({
      verdict: "BYPASS",
      writer: this.#writer,
      maxBytes: options.settings.cacheMaxEntryBytes,
    });
    this.#leader = new FlightLeader({
      ...options,
      flights: this.#flights,
      writer: this.#writer,
      counters: this.#counts,
      token: this.#token,
      lockTtlMs: this.#lockTtlMs,
      maxBytes: options.settings.cacheMaxEntryBytes,
    });
  }

  get counters(): CacheCounters {
    return this.#counts;
  }

  /** Writes still running, for the cache of the next config to keep tracking. */
  get writes(): Set<Promise<unknown>> {
    return this.#writer.writes;
  }

  /**
   * The lookup stage: a cached answer (HIT), one shared by an identical request in flight here or on another
   * instance (COALESCED), or a miss (MISS; BYPASS when the request said `no-cache` or the cache is off) with the
   * ticket the record stage stores the answer with.
   */
  lookup(request: Admitted<GenerationRequest>): CacheLookup | Promise<CacheLookup> {
    // The cache off: a miss at once, no promise for the request to wait on, one ticket for every request.
    if (!this.#settings.cache) {
      this.#counts.bypasses++;
      return { kind: "miss", ticket: this.#bypass, signal: request.signal };
    }
    // The client's Cache-Control is the proxy's: upstreamHeaders never forwards it, nor the body's `cache`.
    const control = parseCacheControl(request.body.cache, request.clientHeaders.get("cache-control"));
    const key = cacheKeyAsync({
      route: request.route,
      group: request.group.name,
      stream: request.stream,
      body: request.body,
      scope: request.identity?.cacheScope,
    }, sizeOf(request.body));
    // A store in this process and no identical request in flight: decided at once, no promise to wait on.
    if (typeof key === "string" && control.read && !this.#flights.get(key)) {
      const found = this.#reader.readNow(key, request);
      if (found) return this.#decide(key, request, control, found);
    }
    return this.#lookup(request, control, key);
  }

  async #lookup(
    request: Admitted<GenerationRequest>,
    control: CacheControl,
    keyed: string | Promise<string>,
  ): Promise<CacheLookup> {
    const key = await keyed;
    const entry = control.write ? { key, control, request, clears: this.#counts.clears } : undefined;
    if (!control.read) {
      this.#counts.bypasses++;
      return this.#miss(request, "BYPASS", entry);
    }
    for (let round = 0; round < FOLLOW_ROUNDS; round++) {
      let flight = this.#flights.get(key);
      if (!flight) {
        const found = await this.#reader.read(key, request, control);
        flight = found.answer ? undefined : this.#flights.get(key);
        if (!flight) return await this.#decide(key, request, control, found);
        // An identical request here opened a flight while this one read: it leads, so a lock taken goes back.
        if (found.locked) this.#leader.release(key);
      }
      const followed = await this.#follow(flight, request);
      if (followed) return { kind: "answer", answer: followed };
    }
    this.#counts.misses++;
    return this.#miss(request, "MISS", entry);
  }

  /** What a read found with no flight for `key` here: the hit, a miss, or a miss that leads a new flight. */
  #decide(
    key: string,
    request: GenerationRequest,
    control: CacheControl,
    found: Found,
  ): CacheLookup | Promise<CacheLookup> {
    if (found.answer) {
      this.#counts.hits++;
      return { kind: "answer", answer: this.#replay(found.answer, "HIT") };
    }
    if (!control.write) {
      this.#counts.misses++;
      return this.#miss(request, "MISS", undefined, found.health);
    }
    return this.#leader.lead(key, request, { key, control, request, clears: this.#counts.clears }, found);
  }

  /** Drops every cached answer (never routing or affinity state); returns how many went. */
  async clear(): Promise<number> {
    this.#counts.clears++;
    this.#usage.forget();
    const deleted = await this.#store.deleteByPrefix(CACHE_PREFIX);
    this.#usage.forget();
    return deleted;
  }

  async figures(): Promise<CacheFigures> {
    const usage = await this.#usage.read();
    return {
      enabled: this.#settings.cache,
      ...this.#counts,
      entries: usage?.entries ?? null,
      bytes: usage?.bytes ?? null,
    };
  }

  /** Waits for the cache writes still running (shutdown, tests). */
  settled(): Promise<void> {
    return this.#writer.settled();
  }

  #replay(answer: CachedAnswer, status: ReplayStatus): Answer {
    return replayAnswer(answer, status, this.#clock.now());
  }

  /** A miss outside any flight: the ticket stores a complete answer when `entry` says where. */
  #miss(
    request: GenerationRequest,
    verdict: "MISS" | "BYPASS",
    entry?: EntryPlace,
    health?: Promise<EndpointHealth[]>,
  ): CacheLookup {
    const ticket = new CacheTicket({
      writer: this.#writer,
      maxBytes: this.#settings.cacheMaxEntryBytes,
      verdict,
      entry,
    });
    return { kind: "miss", ticket, signal: request.signal, health };
  }

  /** Follows a flight; null when its leader failed (the caller tries again). */
  async #follow(flight: Flight, request: GenerationRequest): Promise<Answer | null> {
    const shared: Followed = await flight.follow(request.signal);
    if (shared === null) return null;
    if (shared === "gone") throw new ClientGone();
    if (shared.kind === "entry") {
      this.#counts.coalesced++;
      return this.#replay(shared.answer, "COALESCED");
    }
    const answer = followerAnswer(shared);
    if (answer) this.#counts.coalesced++;
    return answer;
  }
}
