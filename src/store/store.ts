/**
 * The one seam for shared state. Cooldowns, failure counts, rate-limit windows, affinity, coalescing locks and
 * cache entries all go through it, so several proxy instances on one Redis behave as one.
 *
 * Keys passed in are logical (`cache:ab12`, `affinity:resp_1`); each implementation prefixes them with the
 * configured namespace. Endpoint-scoped keys are built by the store itself with a hash tag on the endpoint id so
 * atomic scripts run unchanged on Redis Cluster.
 */

import type { ChargeReply, Counter, Lease, TallyChunk } from "./counters.ts";

export type { ChargeReply, Counter, Lease, TallyChunk } from "./counters.ts";

export type CooldownReason = "failures" | "rate_limit";

/** Health of one endpoint as every instance sees it. */
export interface EndpointHealth {
  /** Consecutive failures since the last success or cooldown. */
  readonly failures: number;
  /**
   * Epoch milliseconds of this instance's clock until which the endpoint is cooling down; 0 when it never was.
   * A shared store keeps the deadline in its own clock and answers with the time left, which this instance adds
   * to its own clock: instances whose clocks disagree still agree on when a cooldown ends.
   */
  readonly cooldownUntil: number;
  /** Why the last cooldown was set; null when none was. */
  readonly reason: CooldownReason | null;
  /**
   * The deadline as the store holds it, in the store's clock (Redis `TIME`): the same for every instance and every
   * read of one cooldown, so it names that cooldown (`health/prober.ts`). Absent where the store's clock is this
   * process's own (the memory store): `cooldownUntil` then.
   */
  readonly storedUntil?: number;
}

export const HEALTHY: EndpointHealth = Object.freeze({ failures: 0, cooldownUntil: 0, reason: null });

export interface FailureOptions {
  /** Consecutive failures that start a cooldown. */
  readonly allowedFails: number;
  /** How long the cooldown lasts, in ms from when the store applies it, if this failure starts one. */
  readonly cooldownMs: number;
}

export type StoreStatus = "ok" | "degraded";

/** One counter of an `addToWindows` call. */
export interface WindowCounter {
  /** The counter's name inside its scope, e.g. `rpm`. */
  readonly name: string;
  /** Added to the counter, rounded to an integer; 0 reads it, a negative amount corrects it. */
  readonly amount: number;
  /**
   * Refuse the whole call when a positive `amount` would take this counter above `limit`; except while the
   * counter is still at 0 or less in this window, so one request larger than the whole budget is let through
   * rather than refused forever. Absent: no limit.
   */
  readonly limit?: number;
}

export interface WindowReply {
  /** True when the amounts were added; false when a limit refused them (then nothing was added). */
  readonly added: boolean;
  /** Each counter's total in the window after the call, in the order given. */
  readonly totals: readonly number[];
}

/** What `readOrLock` found. */
export interface ReadOrLock {
  readonly value: string | null;
  readonly locked: boolean;
}

/** What `usage` reports. */
export interface PrefixUsage {
  readonly entries: number;
  readonly bytes: number;
}

/** One entry for `appendToRelay`: text fields, and bytes stored under the field `d`. */
export interface RelayAppend {
  readonly fields: Readonly<Record<string, string>>;
  readonly data?: Uint8Array;
  /** Drop every entry whose id is lower than this one first (XADD MINID). */
  readonly trimBefore?: string;
}

/** One entry `readRelay` found: its id, its text fields, and the bytes of its field `d`, if any. */
export interface RelayEntry {
  readonly id: string;
  readonly fields: Readonly<Record<string, string>>;
  readonly data?: Uint8Array;
}

/**
 * What a store call touches, for `Store.nodeOf`: one plain key, one endpoint's health, one window scope, or one
 * stream key (as written, not namespaced: `appendToStream`).
 */
export type NodeTarget =
  | {
    readonly key: string;
    readonly health?: undefined;
    readonly window?: undefined;
    readonly stream?: undefined;
  }
  | {
    readonly health: string;
    readonly key?: undefined;
    readonly window?: undefined;
    readonly stream?: undefined;
  }
  | {
    readonly window: string;
    readonly key?: undefined;
    readonly health?: undefined;
    readonly stream?: undefined;
  }
  | {
    readonly stream: string;
    readonly key?: undefined;
    readonly health?: undefined;
    readonly window?: undefined;
  };

export interface Store {
  readonly kind: "memory" | "redis";

  /**
   * Health of many endpoints at once (one round trip on Redis). Unknown ids are healthy. `aside`: a read no
   * request waits for, sent apart from the commands requests batch together (on Redis: not auto-pipelined).
   */
  readHealth(ids: readonly string[], aside?: boolean): Promise<EndpointHealth[]>;
  /**
   * The same, at once, from health held in this process (no promise on a request's way): the memory store's own,
   * or a shared store's copy (its own writes at once, other instances' within `REFRESH_MS` of
   * `health_mirror.ts`); undefined when it does not hold every id yet (then `readHealth`).
   */
  readHealthNow?(ids: readonly string[]): EndpointHealth[] | undefined;
  /**
   * Counts one failure. When the count reaches `allowedFails`, the endpoint cools down for `cooldownMs`
   * (never shortening a later deadline already set) and the count starts again at 0. Atomic across instances.
   */
  recordFailure(id: string, options: FailureOptions): Promise<EndpointHealth>;
  /** Resets the consecutive failure count. Leaves a running cooldown alone. */
  recordSuccess(id: string): Promise<void>;
  /**
   * Cools the endpoint for `forMs` from now, as the store's clock reads it, at once; extends a shorter cooldown,
   * never shortens a longer one.
   */
  coolDown(id: string, forMs: number, reason: CooldownReason): Promise<EndpointHealth>;

  /** Value stored at `key`, or null when absent or expired. */
  get(key: string): Promise<string | null>;
  /** The same, at once, from a store that holds its values in this process (a cache lookup with no promise). */
  getNow?(key: string): string | null;
  /**
   * Optional: `get` for a read whose answer from local state would refuse a client rather than serve it less well
   * (whose a file is: no record is a 404). A store that falls back to local state (`FallbackStore`) asks the shared
   * one even while it serves the key's node locally, and waits up to `waitMs` past its wait bound: a slow answer
   * (a loaded machine, a Redis fork) is not an outage. Local state only when it is disconnected, fails or outlasts
   * it; and when local state has no record then, it rejects with `StoreUnavailableError`: absent is not known.
   */
  getPatiently?(key: string, waitMs: number): Promise<string | null>;
  /** Stores `value` at `key`; `ttlMs` <= 0 or absent means no expiry. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /**
   * The same, at once, in a store that holds its values in this process; throws where `set` rejects. `bytes`: the
   * value's UTF-8 size when the caller knows it, so a store bounded in bytes need not scan (and copy) the value.
   */
  setNow?(key: string, value: string, ttlMs?: number, bytes?: number): void;
  /** Stores only when absent (a lock). True when this call stored it. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /**
   * Reads `key`; when it is absent, stores `lock` = `token` if that is absent too (`setIfAbsent`), in the same
   * atomic step: a cache read and its coalescing lock in one round trip on Redis, where `key` and `lock` must
   * share a hash tag. `locked` is true only when this call took the lock.
   */
  readOrLock(key: string, lock: string, token: string, ttlMs: number): Promise<ReadOrLock>;
  /**
   * `set(key, value, ttlMs)`, then removes `lock` while it holds `token` (`deleteIfEquals`), in one atomic step:
   * a cache entry's write and the release of its coalescing lock in one round trip on Redis, where `key` and
   * `lock` must share a hash tag. True when the lock was removed.
   */
  setAndUnlock(key: string, value: string, ttlMs: number, lock: string, token: string): Promise<boolean>;
  /** Removes `key`; true when it existed. */
  delete(key: string): Promise<boolean>;
  /** Removes `key` only while it holds `value` (releasing a lock one still owns), atomically; true when removed. */
  deleteIfEquals(key: string, value: string): Promise<boolean>;
  /** Optional: makes `key` live `ttlMs` more only while it holds `value` (a lock its owner keeps); true if so. */
  extendIfEquals?(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Removes every key under a logical prefix (`cache:`) without blocking Redis; returns how many went. */
  deleteByPrefix(prefix: string): Promise<number>;
  /**
   * Optional: how many keys lie under a logical prefix and the bytes of their values (`/stats` cache figures).
   * Memory counts as it goes; Redis scans (SCAN, never KEYS), so call it at dashboard rates, not per request.
   */
  usage?(prefix: string): Promise<PrefixUsage>;

  /**
   * Adds `amount` (may be 0 or negative) to the fixed window of `windowMs` that contains `now` for `key`, and
   * returns the window's new total. Atomic across instances.
   */
  addToWindow(key: string, amount: number, windowMs: number, now: number): Promise<number>;
  /**
   * Adds to several counters of one `scope` (an endpoint id) in the fixed window of `windowMs` that contains `now`,
   * all or nothing: when a counter with a `limit` would end above it, none is added (a budget check and charge in
   * one atomic step; one round trip on Redis, where the counters share the scope's hash tag).
   */
  addToWindows(
    scope: string,
    counters: readonly WindowCounter[],
    windowMs: number,
    now: number,
  ): Promise<WindowReply>;

  /**
   * Optional: the name of the node that holds the target (`host:port` of a Cluster master), so a caller can fall
   * back per node. Stores without nodes leave it out.
   */
  nodeOf?(target: NodeTarget): string;
  /** Optional: nodes known to be down right now (names as `nodeOf` gives them); empty while all answer. */
  nodesDown?(): string[];
  /** Optional: whether an error is the server's own error reply (it answered), by its client library's error type. */
  isReply?(error: Error): boolean;

  /**
   * Per-key limits (`src/keys/`): adds to counters of one `scope` (a key), each with its own expiry, and takes a
   * `lease` (a place among concurrent requests), all or nothing: when a counter's limit or the lease's refuses,
   * nothing changes. Atomic across instances; one round trip on Redis, where the scope is the hash tag.
   */
  charge(scope: string, counters: readonly Counter[], lease?: Lease): Promise<ChargeReply>;
  /**
   * Gives back the lease `token` holds on `name` in `scope`; with `counters`, adds them in the same atomic step, no
   * limit checked (what the request spent, charged as it gives back its place: one command on Redis).
   */
  release(scope: string, name: string, token: string, counters?: readonly Counter[]): Promise<void>;
  /** Adds integer `amounts` to the named fields of the tally at `key` (usage per day); it lives `ttlMs` more. */
  addToTally(key: string, amounts: Readonly<Record<string, number>>, ttlMs: number): Promise<void>;
  /**
   * Optional: `addToTally` that a writer may resend without counting twice. `writer` names it (one per process);
   * its chunks' `seq` grow with each chunk it makes, and a chunk at or below the highest `seq` applied at `key`
   * for `writer` is skipped. A writer puts every chunk it has no answer for yet into each later write to `key`,
   * so whatever order writes arrive in (a stalled connection and its replacement), each chunk counts once.
   */
  addToTallyOnce?(key: string, writer: string, chunks: readonly TallyChunk[], ttlMs: number): Promise<void>;
  /** The fields of the tally at `key`; empty when absent. */
  readTally(key: string): Promise<Record<string, number>>;
  /**
   * Optional: appends `fields` to the Redis Stream at `key` (as written, not namespaced), trimmed to about `maxLen`
   * entries (XADD MAXLEN ~). Absent on stores without streams.
   */
  appendToStream?(key: string, fields: Readonly<Record<string, string>>, maxLen: number): Promise<void>;

  /**
   * Optional: appends one entry to the relay stream at `key` (a Redis Stream, for one streamed answer shared live
   * across instances: `cache/relay_writer.ts`), first dropping the entries before id `entry.trimBefore`, and makes
   * the stream live `ttlMs` more. Returns the new entry's id. Absent on stores that one process owns alone.
   */
  appendToRelay?(key: string, entry: RelayAppend, ttlMs: number): Promise<string>;
  /** Optional: up to `count` entries of the relay stream at `key` after id `after` ("0" for all); never blocks. */
  readRelay?(key: string, after: string, count: number): Promise<RelayEntry[]>;

  /**
   * Optional: calls `onMessage` with every message `publish`ed on `channel` by any instance, and with null after
   * each (re)connect, when messages may have been missed. Returns a function that stops it. Absent on stores
   * that one process owns alone.
   */
  subscribe?(channel: string, onMessage: (message: string | null) => void): () => Promise<void>;
  /** Optional: sends `message` to every instance subscribed to `channel`. */
  publish?(channel: string, message: string): Promise<void>;

  /** "ok" while the backing service answers; "degraded" while it does not (memory is always "ok"). */
  status(): StoreStatus;
  close(): Promise<void>;
}

/** `getPatiently`'s answer when the shared store cannot answer and local state holds no record: absent is unknown. */
export class StoreUnavailableError extends Error {
  constructor(key: string) {
    super(`the shared store did not answer for '${key}', and this instance holds no record of it`);
    this.name = "StoreUnavailableError";
  }
}
