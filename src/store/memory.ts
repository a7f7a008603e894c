/**
 * The in-process store: the default, and the local fallback while Redis is away. Plain Maps on the request hot
 * path; expired entries behave as absent at once (checked on read) and are removed by a small sweep that advances
 * on every write, so no timer keeps the process alive.
 */

import { type ChargeReply, type Counter, type Lease, MemoryCounters } from "./counters.ts";
import { applyCooldown, applyFailure, applySuccess } from "./health_transitions.ts";
import { type LruBounds, LruValues } from "./lru.ts";
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
   * Keys under `prefix` (the cache's `cache:`) are kept apart, bounded by entries and bytes, least recently used
   * out first; a value that can never fit is refused (`set` rejects). Other keys are not bounded.
   */
  readonly bounded?: LruBounds & { readonly prefix: string };
}

interface Entry<T> {
  value: T;
  /** Epoch milliseconds; 0 means never. */
  expiresAt: number;
}

/** Entries the sweep inspects per write: enough to keep pace with insertions, small enough to stay cheap. */
const SWEEP_STEP = 8;

export class MemoryStore implements Store {
  readonly kind = "memory" as const;
  readonly namespace: string;
  readonly #now: () => number;
  readonly #health = new Map<string, EndpointHealth>();
  readonly #values = new Map<string, Entry<string>>();
  readonly #windows = new Map<string, Entry<number>>();
  #valueSweep: Iterator<[string, Entry<string>]> | null = null;
  #windowSweep: Iterator<[string, Entry<number>]> | null = null;
  readonly #lru: LruValues | null;
  readonly #lruPrefix: string;
  readonly #counters: MemoryCounters;

  constructor(options: MemoryStoreOptions = {}) {
    this.namespace = options.namespace ?? "llmproxy";
    this.#now = options.now ?? Date.now;
    this.#lru = options.bounded ? new LruValues(options.bounded, this.#now) : null;
    this.#lruPrefix = options.bounded?.prefix ?? "";
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
    const health = this.#health;
    const out = new Array<EndpointHealth>(ids.length);
    for (let i = 0; i < ids.length; i++) out[i] = health.get(ids[i]) ?? HEALTHY;
    return Promise.resolve(out);
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

  set(key: string, value: string, ttlMs?: number): Promise<void> {
    const lru = this.#lruFor(key);
    try {
      if (lru) lru.set(key, value, ttlMs);
      else this.#write(key, value, ttlMs);
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve();
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
    let count = this.#lru && this.#overlaps(prefix) ? this.#lru.deleteByPrefix(prefix) : 0;
    for (const [key, entry] of this.#values) {
      if (!key.startsWith(prefix)) continue;
      if (entry.expiresAt === 0 || entry.expiresAt > now) count++;
      this.#values.delete(key);
    }
    return Promise.resolve(count);
  }

  addToWindow(key: string, amount: number, windowMs: number, now: number): Promise<number> {
    if (!(windowMs > 0)) {
      return Promise.reject(new RangeError(`addToWindow '${key}': windowMs must be > 0, got ${windowMs}`));
    }
    const clock = this.#now();
    this.#sweepWindows(clock);
    const windowKey = `${key}\u0000${Math.floor(now / windowMs) * windowMs}`;
    const add = Math.round(amount);
    const entry = this.#windows.get(windowKey);
    if (entry === undefined || entry.expiresAt <= clock) {
      this.#windows.set(windowKey, { value: add, expiresAt: clock + windowMs });
      return Promise.resolve(add);
    }
    entry.value += add;
    entry.expiresAt = clock + windowMs;
    return Promise.resolve(entry.value);
  }

  addToWindows(
    scope: string,
    counters: readonly WindowCounter[],
    windowMs: number,
    now: number,
  ): Promise<WindowReply> {
    if (!(windowMs > 0)) {
      return Promise.reject(new RangeError(`addToWindows '${scope}': windowMs must be > 0, got ${windowMs}`));
    }
    const clock = this.#now();
    this.#sweepWindows(clock);
    // \u0001 keeps these apart from addToWindow's keys.
    const prefix = `\u0001${scope}\u0001`;
    const suffix = `\u0000${Math.floor(now / windowMs) * windowMs}`;
    const entries = counters.map((counter) => {
      const entry = this.#windows.get(prefix + counter.name + suffix);
      return entry !== undefined && entry.expiresAt > clock ? entry : undefined;
    });
    const totals = entries.map((entry) => entry?.value ?? 0);
    const added = counters.every((counter, i) =>
      !refuses(totals[i], Math.round(counter.amount), counter.limit)
    );
    if (added) {
      counters.forEach((counter, i) => {
        const amount = Math.round(counter.amount);
        if (amount === 0) return;
        totals[i] += amount;
        const entry = entries[i];
        if (entry === undefined) {
          this.#windows.set(prefix + counter.name + suffix, {
            value: totals[i],
            expiresAt: clock + windowMs,
          });
        } else {
          entry.value = totals[i];
          entry.expiresAt = clock + windowMs;
        }
      });
    }
    return Promise.resolve({ added, totals });
  }

  usage(prefix: string): Promise<PrefixUsage> {
    if (this.#lru && prefix === this.#lruPrefix) return Promise.resolve(this.#lru.usage());
    const now = this.#now();
    let entries = 0;
    let bytes = 0;
    for (const [key, entry] of this.#values) {
      if (!key.startsWith(prefix) || (entry.expiresAt !== 0 && entry.expiresAt <= now)) continue;
      entries++;
      bytes += entry.value.length;
    }
    if (this.#lru && this.#overlaps(prefix)) {
      const lru = this.#lru.usage();
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
    return this.#health.size + this.#values.size + this.#windows.size + (this.#lru?.size ?? 0) +
      this.#counters.size;
  }

  /** Forgets everything. */
  clear(): void {
    this.#health.clear();
    this.#values.clear();
    this.#windows.clear();
    this.#lru?.clear();
    this.#counters.clear();
    this.#valueSweep = null;
    this.#windowSweep = null;
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

  /** The bounded map when `key` lies under its prefix. */
  #lruFor(key: string): LruValues | null {
    return this.#lru !== null && key.startsWith(this.#lruPrefix) ? this.#lru : null;
  }

  /** Whether keys under `prefix` may lie in the bounded map. */
  #overlaps(prefix: string): boolean {
    return prefix.startsWith(this.#lruPrefix) || this.#lruPrefix.startsWith(prefix);
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

  #sweepWindows(now: number): void {
    this.#windowSweep = sweep(this.#windows, this.#windowSweep, now);
  }
}

/** The limit rule of `addToWindows` (the Redis script mirrors it). */
function refuses(total: number, amount: number, limit: number | undefined): boolean {
  return limit !== undefined && amount > 0 && total > 0 && total + amount > limit;
}

/**
 * Inspects up to SWEEP_STEP entries from where the last sweep stopped, deleting expired ones. Map iterators stay
 * valid across deletes and inserts, so one iterator walks the map in rounds; returns it (null when a round ends).
 */
function sweep<T>(
  map: Map<string, Entry<T>>,
  iterator: Iterator<[string, Entry<T>]> | null,
  now: number,
): Iterator<[string, Entry<T>]> | null {
  if (map.size === 0) return null;
  const it = iterator ?? map.entries();
  for (let i = 0; i < SWEEP_STEP; i++) {
    const step = it.next();
    if (step.done) return null;
    const [key, entry] = step.value;
    if (entry.expiresAt !== 0 && entry.expiresAt <= now) map.delete(key);
  }
  return it;
}
