/**
 * The in-process store: the default, and the local fallback while Redis is away. Plain Maps on the request hot
 * path; expired entries behave as absent at once (checked on read) and are removed by a small sweep that advances
 * on every write, so no timer keeps the process alive.
 */

import { type ChargeReply, type Counter, type Lease, MemoryCounters } from "./counters.ts";
import { applyCooldown, applyFailure, applySuccess } from "./health_transitions.ts";
import { type Entry, sweep } from "./expiring.ts";
import { type LruBounds, LruValues } from "./lru.ts";
import { MemoryWindows } from "./memory_windows.ts";
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
  readonly #values = new Map<string, Entry<string>>();
  readonly #windows: MemoryWindows;
  #valueSweep: Iterator<[string, Entry<string>]> | null = null;
  readonly #areas: readonly { readonly prefix: string; readonly lru: LruValues }[];
  readonly #first: { readonly prefix: string; readonly lru: LruValues } | null;
  readonly #counters: MemoryCounters;

  constructor(options: MemoryStoreOptions = {}) {
    this.namespace = options.namespace ?? "llmproxy";
    this.#now = options.now ?? Date.now;
    this.#windows = new MemoryWindows(this.#now);
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

  release(scope: string, name: string, token: string): Promise<void> {
    return this.#counters.release(scope, name, token);
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
    const next = applyFailure(this.#health.get(id) ?? HEALTHY, options);
    this.#health.set(id, next);
    return Promise.resolve(next);
  }

  recordSuccess(id: string): Promise<void> {
    const state = this.#health.get(id);
    if (state !== undefined) this.#health.set(id, applySuccess(state));
    return Promise.resolve();
  }

  coolDown(id: string, until: number, reason: CooldownReason): Promise<EndpointHealth> {
    const next = applyCooldown(this.#health.get(id) ?? HEALTHY, until, reason);
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
    else this.#write(key, value, ttlMs);
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
    return lru ? lru.get(key) : this.#live(key)?.value ?? null;
  }

  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const lru = this.#lruFor(key);
    if (lru) {
      if (lru.has(key)) return Promise.resolve(false);
      return this.set(key, value, ttlMs).then(() => true);
    }
    if (this.#live(key) !== undefined) return Promise.resolve(false);
    this.#write(key, value, ttlMs);
    return Promise.resolve(true);
  }

  deleteIfEquals(key: string, value: string): Promise<boolean> {
    if (this.#read(key) !== value) return Promise.resolve(false);
    return this.delete(key);
  }

  delete(key: string): Promise<boolean> {
    const lru = this.#lruFor(key);
    if (lru) return Promise.resolve(lru.delete(key));
    const existed = this.#live(key) !== undefined;
    this.#values.delete(key);
    return Promise.resolve(existed);
  }

  deleteByPrefix(prefix: string): Promise<number> {
    const now = this.#now();
    let count = 0;
    for (const area of this.#areas) {
      if (overlaps(area.prefix, prefix)) count += area.lru.deleteByPrefix(prefix);
    }
    for (const [key, entry] of this.#values) {
      if (!key.startsWith(prefix)) continue;
      if (entry.expiresAt === 0 || entry.expiresAt > now) count++;
      this.#values.delete(key);
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
    const now = this.#now();
    let entries = 0;
    let bytes = 0;
    for (const [key, entry] of this.#values) {
      if (!key.startsWith(prefix) || (entry.expiresAt !== 0 && entry.expiresAt <= now)) continue;
      entries++;
      bytes += entry.value.length;
    }
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
    this.#valueSweep = null;
  }

  close(): Promise<void> {
    this.clear();
    return Promise.resolve();
  }

  #write(key: string, value: string, ttlMs: number | undefined): void {
    const now = this.#now();
    this.#sweepValues(now);
    const expiresAt = ttlMs !== undefined && ttlMs > 0 ? now + ttlMs : 0;
    const entry = this.#values.get(key);
    if (entry === undefined) this.#values.set(key, { value, expiresAt });
    else {
      entry.value = value;
      entry.expiresAt = expiresAt;
    }
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

  /** The entry at `key` if present and not expired; an expired one is removed. */
  #live(key: string): Entry<string> | undefined {
    const entry = this.#values.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== 0 && entry.expiresAt <= this.#now()) {
      this.#values.delete(key);
      return undefined;
    }
    return entry;
  }

  #sweepValues(now: number): void {
    this.#valueSweep = sweep(this.#values, this.#valueSweep, now);
  }
}

/** Whether keys under `prefix` may lie in the area of `areaPrefix`. */
function overlaps(areaPrefix: string, prefix: string): boolean {
  return prefix.startsWith(areaPrefix) || areaPrefix.startsWith(prefix);
}
