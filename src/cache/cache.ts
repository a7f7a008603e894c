/**
 * The cache layer in front of the pipeline: `handle(request, next)` answers from the cache (HIT), from an
 * identical request in flight here or on another instance (COALESCED), or calls `next` (MISS; BYPASS when the
 * request said `no-cache` or the cache is off) and stores the answer when it is a complete success.
 *
 * Writes are off the response path: a JSON answer is stored after it is handed back, a stream from the
 * recorder's `flush` once its terminal event went by. A write that fails is logged at warn and changes
 * nothing for the client. Entries live in the store under `cache:{<sha256>}`, so `clear()` is one
 * `deleteByPrefix("cache:")`.
 *
 * On a shared store (Redis) a lookup costs one round trip, hit or miss: a JSON request's entry read also takes the
 * coalescing lock when the entry is absent (one script), and the group's endpoint health is read alongside, for
 * the pipeline to use on a miss.
 */

import type { Clock } from "../balancer/balancer.ts";
import type { GroupConfig, Settings } from "../config/config.ts";
import type { Logger } from "../logger.ts";
import { toJsonAnswer } from "../proxy/answer.ts";
import { ClientGone, type ProxyRequest } from "../proxy/pipeline.ts";
import type { EndpointHealth, PrefixUsage, Store } from "../store/store.ts";
import { Broadcast } from "./broadcast.ts";
import { type Flight, Flights, type Followed, lockKey, lockOrWait, unlock } from "./coalesce.ts";
import { type CacheControl, parseCacheControl } from "./control.ts";
import { CACHE_PREFIX, type CachedAnswer, decodeEntry, entryKey } from "./entry.ts";
import { cacheKey } from "./key.ts";
import { replayedEndpoint, replayResponse, type ReplayStatus } from "./replay.ts";
import { type CacheCounters, EntryWriter, newCounters } from "./writer.ts";

export { CACHE_PREFIX } from "./entry.ts";
export type { CacheCounters } from "./writer.ts";

export type Next = (request: ProxyRequest) => Promise<Response>;

export type CacheStatus = "HIT" | "MISS" | "BYPASS" | "COALESCED";

/** `/stats` figures: this instance's counters; entries and bytes from the (shared) store. */
export interface CacheFigures extends Readonly<CacheCounters> {
  readonly enabled: boolean;
  /** Null when the store cannot count them. */
  readonly entries: number | null;
  readonly bytes: number | null;
}

export interface CacheOptions {
  readonly store: Store;
  readonly settings: Settings;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Counters to continue (a config reload); default fresh ones. */
  readonly counters?: CacheCounters;
  /**
   * Reads a group's endpoint health. On a shared store a lookup reads it at the same time as the entry, so a miss
   * costs one Redis round trip and the balancer does not read it again.
   */
  readonly readHealth?: (group: GroupConfig) => Promise<EndpointHealth[]>;
}

/**
 * Longest a cross-instance coalescing lock lives, and so the longest a follower waits for another instance.
 */
const MAX_LOCK_MS = 30_000;
/** Rounds a follower whose leader failed may join a new flight before going upstream on its own. */
const FOLLOW_ROUNDS = 3;

/** What a lookup found, and what it started for a miss. */
interface Lookup {
  readonly answer: CachedAnswer | null;
  /** The read took the cross-instance lock as well (a JSON request on a shared store, entry absent). */
  readonly locked: boolean;
  /** The read tried the lock: another holder has it, so a leader goes straight to waiting for its entry. */
  readonly triedLock: boolean;
  /** The group's health, read alongside on a shared store. */
  readonly health?: Promise<EndpointHealth[]>;
}

/** How long `/stats` reuses a count of entries and bytes (counting may scan the store). */
const USAGE_REUSE_MS = 1_000;

export class ResponseCache {
  readonly #store: Store;
  readonly #settings: Settings;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #flights = new Flights();
  readonly #writer: EntryWriter;
  readonly #readHealth: CacheOptions["readHealth"];
  readonly #token = crypto.randomUUID();
  readonly #lockTtlMs: number;
  #usage: { at: number; value: Promise<PrefixUsage | null> } | null = null;
  readonly #counts: CacheCounters;

  constructor(options: CacheOptions) {
    this.#store = options.store;
    this.#settings = options.settings;
    this.#logger = options.logger;
    this.#clock = options.clock;
    this.#counts = options.counters ?? newCounters();
    this.#writer = new EntryWriter({ ...options, counters: this.#counts });
    this.#readHealth = options.readHealth;
    this.#lockTtlMs = Math.min(MAX_LOCK_MS, options.settings.httpTimeoutMs);
  }

  get counters(): CacheCounters {
    return this.#counts;
  }

  async handle(request: ProxyRequest, next: Next): Promise<Response> {
    // The client's Cache-Control is the proxy's: upstreamHeaders never forwards it, nor the body's `cache`.
    const control = parseCacheControl(request.body.cache, request.clientHeaders.get("cache-control"));
    // The verdict travels with the request: the pipeline writes it into the answer's headers as it builds them.
    if (!this.#settings.cache) {
      this.#counts.bypasses++;
      return await next({ ...request, cacheStatus: "BYPASS" });
    }
    const key = cacheKey({
      route: request.route,
      group: request.group.name,
      stream: request.stream,
      body: request.body,
    });
    if (!control.read) {
      this.#counts.bypasses++;
      return await this.#fetch(key, { ...request, cacheStatus: "BYPASS" }, next, control);
    }
    for (let round = 0; round < FOLLOW_ROUNDS; round++) {
      let flight = this.#flights.get(key);
      if (!flight) {
        const lookup = await this.#lookup(key, request, control);
        if (lookup.answer) {
          this.#counts.hits++;
          return this.#replay(lookup.answer, "HIT", request);
        }
        flight = this.#flights.get(key);
        if (!flight) {
          if (!control.write) {
            this.#counts.misses++;
            return await next({ ...request, cacheStatus: "MISS", health: lookup.health });
          }
          return await this.#lead(key, request, next, control, lookup);
        }
        // An identical request here opened a flight while this one read: it leads, so a lock taken goes back.
        if (lookup.locked) this.#release(key);
      }
      const followed = await this.#follow(flight, request);
      if (followed) return followed;
    }
    this.#counts.misses++;
    return await this.#fetch(key, { ...request, cacheStatus: "MISS" }, next, control);
  }

  /** Drops every cached answer (never routing or affinity state); returns how many went. */
  async clear(): Promise<number> {
    this.#usage = null;
    const deleted = await this.#store.deleteByPrefix(CACHE_PREFIX);
    this.#usage = null;
    return deleted;
  }

  async figures(): Promise<CacheFigures> {
    const usage = await this.#storeUsage();
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

  /** Gives back this instance's coalescing lock for `key`, off the response path. */
  #release(key: string): void {
    this.#writer.track(unlock(this.#store, key, this.#token));
  }

  /** A cached answer as this request's response, noted in its trace. */
  #replay(answer: CachedAnswer, status: ReplayStatus, request: ProxyRequest): Response {
    if (request.trace) {
      request.trace.served = { endpoint: replayedEndpoint(answer), attempts: 0, cache: status };
    }
    return replayResponse(answer, status, this.#clock.now(), request.requestId);
  }

  /** Follows a flight; null when its leader failed (the caller tries again). */
  async #follow(flight: Flight, request: ProxyRequest): Promise<Response | null> {
    const shared: Followed = await flight.follow(request.signal);
    if (shared === null) return null;
    if (shared === "gone") throw new ClientGone();
    if (shared.kind === "entry") {
      this.#counts.coalesced++;
      return this.#replay(shared.answer, "COALESCED", request);
    }
    const body = shared.kind === "json" ? shared.bytes : shared.broadcast.join();
    if (!body) return null;
    const headers = new Headers(shared.headers);
    headers.set("x-llmproxy-cache", "COALESCED");
    headers.set("x-request-id", request.requestId);
    if (request.trace) {
      request.trace.served = {
        endpoint: headers.get("x-llmproxy-endpoint") ?? "",
        attempts: Number(headers.get("x-llmproxy-attempts") ?? 0),
        cache: "COALESCED",
      };
    }
    this.#counts.coalesced++;
    return new Response(body, { status: 200, headers });
  }

  /**
   * Leads a new flight, with the cross-instance lock (taken by the lookup, or now; or after waiting for another
   * instance, which may instead have written the answer), then calls `next`.
   */
  async #lead(
    key: string,
    request: ProxyRequest,
    next: Next,
    control: CacheControl,
    lookup: Lookup,
  ): Promise<Response> {
    if (request.signal.aborted) {
      if (lookup.locked) this.#release(key);
      throw new ClientGone();
    }
    const flight = this.#flights.open(key);
    const stopAttending = flight.attend(request.signal);
    let locked = lookup.locked;
    let finished = false;
    /** Closes the flight and gives back the lock, unless the entry's write already did (`lockReleased`). */
    const finish = (lockReleased = false) => {
      if (finished) return;
      finished = true;
      this.#flights.close(key, flight);
      if (locked && !lockReleased) this.#release(key);
    };
    try {
      // One process needs no lock in the store: its flights already coalesce everything it serves. Streams do not
      // wait for another instance either: its entry exists only once its stream has ended, and a streaming
      // client must not wait that long for its first token.
      const ttlMs = this.#lockTtlMs;
      const crossInstance = this.#store.kind !== "memory" && !request.stream;
      const outcome = crossInstance && !lookup.locked
        ? await lockOrWait(
          this.#store,
          key,
          { ttlMs, waitMs: ttlMs, token: this.#token, tried: lookup.triedLock },
          flight.signal,
        )
        : { kind: "lead" as const, locked: lookup.locked, waited: false };
      if (outcome.kind === "entry") {
        const answer = decodeEntry(outcome.text);
        if (answer) {
          flight.settle({ kind: "entry", answer });
          finish();
          this.#counts.coalesced++;
          return this.#replay(answer, "COALESCED", request);
        }
      } else locked = outcome.locked;
      this.#counts.misses++;
      // The health read with the entry is current unless this request waited for another instance.
      const response = await next({
        ...request,
        signal: flight.signal,
        cacheStatus: "MISS",
        health: outcome.kind === "lead" && !outcome.waited ? lookup.health : undefined,
      });
      if (response.status !== 200 || !response.body) {
        flight.settle(null);
        finish();
        return response;
      }
      if (request.stream) return this.#leadStream(key, request, response, control, flight, finish);
      const answer = await toJsonAnswer(response);
      flight.settle({ kind: "json", headers: answer.headerRecord, bytes: answer.payload });
      // Holding the lock, the entry's write gives it back in the same step (one Redis round trip, not two).
      const lock = locked ? { key: lockKey(key), token: this.#token } : undefined;
      this.#writer.json(key, request, answer, control, finish, lock);
      return answer;
    } catch (error) {
      flight.settle(null);
      finish();
      throw error;
    } finally {
      stopAttending();
    }
  }

  #leadStream(
    key: string,
    request: ProxyRequest,
    response: Response,
    control: CacheControl,
    flight: Flight,
    finish: () => void,
  ): Response {
    const headers = response.headers;
    const recorded = response.body!.pipeThrough(this.#writer.stream(key, request, headers, control, finish));
    const broadcast = new Broadcast(recorded, {
      maxBytes: this.#settings.cacheMaxEntryBytes,
      // A stream that ended is finished by its recorder, once stored; one cut short is finished here.
      onEnd: (end) => {
        if (end !== "done") finish();
      },
    });
    flight.settle({ kind: "stream", headers, broadcast });
    return new Response(broadcast.join(), { status: 200, headers });
  }

  /** Calls `next` outside any flight and stores a complete answer (when `control` allows). */
  async #fetch(key: string, request: ProxyRequest, next: Next, control: CacheControl): Promise<Response> {
    const response = await next(request);
    if (!control.write || response.status !== 200 || !response.body) return response;
    if (!request.stream) {
      const answer = await toJsonAnswer(response);
      this.#writer.json(key, request, answer, control);
      return answer;
    }
    const recorder = this.#writer.stream(key, request, response.headers, control);
    return new Response(response.body.pipeThrough(recorder), { status: 200, headers: response.headers });
  }

  /**
   * The cached answer for `key`, or none (also when the store cannot be read: a miss, logged). On a shared store
   * the group's health is read at the same time, and a JSON request that may write takes the coalescing lock in
   * the same script as the read, so a miss needs no second round trip before the upstream call.
   */
  async #lookup(key: string, request: ProxyRequest, control: CacheControl): Promise<Lookup> {
    const shared = this.#store.kind !== "memory";
    const health = shared ? this.#readHealth?.(request.group) : undefined;
    const lockable = shared && control.write && !request.stream;
    let text: string | null;
    let locked = false;
    try {
      if (lockable) {
        ({ value: text, locked } = await this.#store.readOrLock(
          entryKey(key),
          lockKey(key),
          this.#token,
          this.#lockTtlMs,
        ));
      } else text = await this.#store.get(entryKey(key));
    } catch (error) {
      this.#logger.warn("cache read failed; treating it as a miss", {
        request_id: request.requestId,
        error: error instanceof Error ? error.message : String(error),
      });
      return { answer: null, locked: false, triedLock: false, health };
    }
    const answer = text === null ? null : decodeEntry(text);
    const usable = answer && answer.stream === request.stream ? answer : null;
    return { answer: usable, locked, triedLock: lockable && text === null, health };
  }

  #storeUsage(): Promise<PrefixUsage | null> {
    const now = this.#clock.now();
    if (this.#usage && now - this.#usage.at < USAGE_REUSE_MS) return this.#usage.value;
    const value = this.#store.usage
      ? this.#store.usage(CACHE_PREFIX).catch(() => null)
      : Promise.resolve(null);
    this.#usage = { at: now, value };
    return value;
  }
}
