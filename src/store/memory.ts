/**
 * The in-process store: the default, and the local fallback while Redis is away. Plain Maps on the request hot
 * path; values live in bounded areas by prefix (`lru.ts`) or, for other keys, in `PlainValues` (expired entries
 * behave as absent at once and are swept as writes go by, so no timer keeps the process alive).
 */

import { type ChargeReply, type Counter, type Lease, MemoryCounters } from "./counters.ts";
import { applyCooldown, applyFailure, applySuccess } from "./health_transitions.ts";
import { type LruBounds, LruValues } from "./lru.ts";
import { MemoryWindows } from "./memory_windows.ts";
import { PlainValues } from "./plain_values.ts";
import {
  type CooldownReason,
  type EndpointHealth,
  type FailureOptions,
  HEALTHY,
  type PrefixUsage,
  type ReadOrLock,
  type Store,
  type StoreStatus,
  type WindowCounter,
  type WindowReply,
} from "./store.ts";

export interface MemoryStoreOptions {
  /** Kept for symmetry with the Redis store; each MemoryStore has its own maps anyway. */
  readonly namespace?: string;
  /** Epoch milliseconds; defaults to `Date.now`. */
  readonly now?: () => number;
  /**
   * Keys under each `prefix` (the cache's `cache:`, the Responses turns' `turn:`) are kept apart, bounded by entries
   * and bytes, least recently used out first; a value that can never fit is refused (`set` rejects). Other keys are
   * not bounded. The first area whose prefix a key starts with holds it.
   */
  readonly bounded?: BoundedArea | readonly BoundedArea[];
}

export type BoundedArea = LruBounds & { readonly prefix: string };

export class MemoryStore implements Store {
  readonly kind = "memory" as const;
  readonly namespace: string;
  readonly #now: () => number;
  readonly #health = new Map<string, EndpointHealth>();
  readonly #values: PlainValues;
  readonly #windows: MemoryWindows;
  readonly #areas: readonly { readonly prefix: string; readonly lru: LruValues }[];
  readonly #first: { readonly prefix: string; readonly lru: LruValues } | null;
  readonly #counters: MemoryCounters;

  constructor(options: MemoryStoreOptions = {}) {
    this.namespace = options.namespace ?? "llmproxy";
    this.#now = options.now ?? Date.now;
    this.#windows = new MemoryWindows(this.#now);
    this.#values = new PlainValues(this.#now);
    const { bounded = [] } = options;
    this.#areas = ("prefix" in bounded ? [bounded] : bounded).map((area) => ({
      prefix: area.prefix,
      lru: new LruValues(area, this.#now),
    }));
    this.#first = this.#areas[0] ?? null;
    this.#counters = new MemoryCounters(this.#now);
  }

  charge(scope: string, counters: readonly Counter[], lease?: Lease): Promise<ChargeReply> {
    return this.#counters.charge(scope, counters, lease);
  }

  release(scope: string, name: string, token: string, counters?: readonly Counter[]): Promise<void> {
    return this.#counters.release(scope, name, token, counters);
  }

  addToTally(key: string, amounts: Readonly<Record<string, number>>, ttlMs: number): Promise<void> {
    return this.#counters.addToTally(key, amounts, ttlMs);
  }

  readTally(key: string): Promise<Record<string, number>> {
    return this.#counters.readTally(key);
  }

  readHealth(ids: readonly string[]): Promise<EndpointHealth[]> {
    return Promise.resolve(this.readHealthNow(ids));
  }

  readHealthNow(ids: readonly string[]): EndpointHealth[] {
    const health = this.#health;
    const out = new Array<EndpointHealth>(ids.length);
    for (let i = 0; i < ids.length; i++) out[i] = health.get(ids[i]) ?? HEALTHY;
    return out;
  }

  recordFailure(id: string, options: FailureOptions): Promise<EndpointHealth> {
    const next = applyFailure(
      this.#health.get(id) ?? HEALTHY,
      options.allowedFails,
      this.#now() + options.cooldownMs,
    );
    this.#health.set(id, next);
    return Promise.resolve(next);
  }

  recordSuccess(id: string): Promise<void> {
    const state = this.#health.get(id);
    if (state !== undefined) this.#health.set(id, applySuccess(state));
    return Promise.resolve();
  }

  coolDown(id: string, forMs: number, reason: CooldownReason): Promise<EndpointHealth> {
    const next = applyCooldown(this.#health.get(id) ?? HEALTHY, this.#now() + forMs, reason);
    this.#health.set(id, next);
    return Promise.resolve(next);
  }

  get(key: string): Promise<string | null> {
    return Promise.resolve(this.#read(key));
  }

  getNow(key: string): string | null {
    return this.#read(key);
  }

  set(key: string, value: string, ttlMs?: number): Promise<void> {
    try {
      this.setNow(key, value, ttlMs);
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve();
  }

  setNow(key: string, value: string, ttlMs?: number, bytes?: number): void {
    const lru = this.#lruFor(key);
    if (lru) lru.set(key, value, ttlMs, bytes);
    else this.#values.set(key, value, ttlMs);
  }

  /** The read and the lock happen in one synchronous step (no await between them), as on Redis. */
  readOrLock(key: string, lock: string, token: string, ttlMs: number): Promise<ReadOrLock> {
    const value = this.#read(key);
    if (value !== null) return Promise.resolve({ value, locked: false });
    return this.setIfAbsent(lock, token, ttlMs).then((locked) => ({ value: null, locked }));
  }

  setAndUnlock(key: string, value: string, ttlMs: number, lock: string, token: string): Promise<boolean> {
    return this.set(key, value, ttlMs).then(() => this.deleteIfEquals(lock, token));
  }

  #read(key: string): string | null {
    const lru = this.#lruFor(key);
    return lru ? lru.get(key) : this.#values.get(key);
  }

  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const lru = this.#lruFor(key);
    if (lru) {
      if (lru.has(key)) return Promise.resolve(false);
      return this.set(key, value, ttlMs).then(() => true);
    }
    if (this.#values.has(key)) return Promise.resolve(false);
    this.#values.set(key, value, ttlMs);
    return Promise.resolve(true);
  }

  deleteIfEquals(key: string, value: string): Promise<boolean> {
    if (this.#read(key) !== value) return Promise.resolve(false);
    return this.delete(key);
  }

  delete(key: string): Promise<boolean> {
    const lru = this.#lruFor(key);
    return Promise.resolve(lru ? lru.delete(key) : this.#values.delete(key));
  }

  deleteByPrefix(prefix: string): Promise<number> {
    let count = this.#values.deleteByPrefix(prefix);
    for (const area of this.#areas) {
      if (overlaps(area.prefix, prefix)) count += area.lru.deleteByPrefix(prefix);
    }
    return Promise.resolve(count);
  }

  addToWindow(key: string, amount: number, windowMs: number, now: number): Promise<number> {
    return this.#windows.add(key, amount, windowMs, now);
  }

  addToWindows(
    scope: string,
    counters: readonly WindowCounter[],
    windowMs: number,
    now: number,
  ): Promise<WindowReply> {
    return this.#windows.addAll(scope, counters, windowMs, now);
  }

  usage(prefix: string): Promise<PrefixUsage> {
    const exact = this.#areas.find((area) => area.prefix === prefix);
    if (exact) return Promise.resolve(exact.lru.usage());
    let { entries, bytes } = this.#values.usage(prefix);
    for (const area of this.#areas) {
      if (!overlaps(area.prefix, prefix)) continue;
      const lru = area.lru.usage();
      entries += lru.entries;
      bytes += lru.bytes;
    }
    return Promise.resolve({ entries, bytes });
  }

  status(): StoreStatus {
    return "ok";
  }

  /** Entries held, expired ones not yet swept included (for tests and metrics). */
  get size(): number {
    return this.#health.size + this.#values.size + this.#windows.size +
      this.#areas.reduce((sum, area) => sum + area.lru.size, 0) + this.#counters.size;
  }

  /** Forgets everything. */
  clear(): void {
    this.#health.clear();
    this.#values.clear();
    this.#windows.clear();
    for (const area of this.#areas) area.lru.clear();
    this.#counters.clear();
  }

  close(): Promise<void> {
    this.clear();
    return Promise.resolve();
  }

  /** The bounded map when `key` lies under the prefix of one; the first (the cache's) is checked as before. */
  #lruFor(key: string): LruValues | null {
    const first = this.#first;
    if (first === null) return null;
    if (key.startsWith(first.prefix)) return first.lru;
    const areas = this.#areas;
    for (let i = 1; i < areas.length; i++) if (key.startsWith(areas[i].prefix)) return areas[i].lru;
    return null;
  }
}

/** Whether keys under `prefix` may lie in the area of `areaPrefix`. */
function overlaps(areaPrefix: string, prefix: string): boolean {
  return prefix.startsWith(areaPrefix) || areaPrefix.startsWith(prefix);
}
