/**
 * The memory store's values that no bounded area holds: a plain Map with an expiry per entry. Expired entries read
 * as absent at once and are removed by a small sweep that advances on every write, so no timer keeps the process
 * alive.
 */

import { type Entry, sweep } from "./expiring.ts";
import type { PrefixUsage } from "./store.ts";

export class PlainValues {
  readonly #now: () => number;
  readonly #values = new Map<string, Entry<string>>();
  #sweep: Iterator<[string, Entry<string>]> | null = null;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** The value at `key`, or null when absent or expired (an expired entry is removed). */
  get(key: string): string | null {
    return this.#live(key)?.value ?? null;
  }

  has(key: string): boolean {
    return this.#live(key) !== undefined;
  }

  /** Stores `value`; `ttlMs` <= 0 or absent means no expiry. */
  set(key: string, value: string, ttlMs: number | undefined): void {
    const now = this.#now();
    this.#sweep = sweep(this.#values, this.#sweep, now);
    const expiresAt = ttlMs !== undefined && ttlMs > 0 ? now + ttlMs : 0;
    const entry = this.#values.get(key);
    if (entry === undefined) this.#values.set(key, { value, expiresAt });
    else {
      entry.value = value;
      entry.expiresAt = expiresAt;
    }
  }

  /** True when a live entry went. */
  delete(key: string): boolean {
    const existed = this.#live(key) !== undefined;
    this.#values.delete(key);
    return existed;
  }

  /** Removes every key under `prefix`; returns how many live ones went. */
  deleteByPrefix(prefix: string): number {
    const now = this.#now();
    let count = 0;
    for (const [key, entry] of this.#values) {
      if (!key.startsWith(prefix)) continue;
      if (entry.expiresAt === 0 || entry.expiresAt > now) count++;
      this.#values.delete(key);
    }
    return count;
  }

  /** Live keys under `prefix` and the length of their values. */
  usage(prefix: string): PrefixUsage {
    const now = this.#now();
    let entries = 0;
    let bytes = 0;
    for (const [key, entry] of this.#values) {
      if (!key.startsWith(prefix) || (entry.expiresAt !== 0 && entry.expiresAt <= now)) continue;
      entries++;
      bytes += entry.value.length;
    }
    return { entries, bytes };
  }

  /** Entries held, expired ones not yet swept included. */
  get size(): number {
    return this.#values.size;
  }

  clear(): void {
    this.#values.clear();
    this.#sweep = null;
  }

  #live(key: string): Entry<string> | undefined {
    const entry = this.#values.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== 0 && entry.expiresAt <= this.#now()) {
      this.#values.delete(key);
      return undefined;
    }
    return entry;
  }
}
