/**
 * The cache's `/stats` figures: this instance's counters, and the entries and bytes in the (shared) store. Counting
 * may scan the store, so a count is reused for a second.
 */

import type { Clock } from "../core/clock.ts";
import type { PrefixUsage, Store } from "../store/store.ts";
import { CACHE_PREFIX } from "./entry.ts";
import type { CacheCounters } from "./writer.ts";

export interface CacheFigures extends Readonly<CacheCounters> {
  readonly enabled: boolean;
  /** Null when the store cannot count them. */
  readonly entries: number | null;
  readonly bytes: number | null;
}

/** How long `/stats` reuses a count of entries and bytes. */
const USAGE_REUSE_MS = 1_000;

export class StoreUsage {
  readonly #store: Store;
  readonly #clock: Clock;
  #last: { at: number; value: Promise<PrefixUsage | null> } | null = null;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /** Entries and bytes under the cache prefix; null when the store cannot count them. */
  read(): Promise<PrefixUsage | null> {
    const now = this.#clock.now();
    if (this.#last && now - this.#last.at < USAGE_REUSE_MS) return this.#last.value;
    const value = this.#store.usage
      ? this.#store.usage(CACHE_PREFIX).catch(() => null)
      : Promise.resolve(null);
    this.#last = { at: now, value };
    return value;
  }

  /** Counts again next time (the entries just changed). */
  forget(): void {
    this.#last = null;
  }
}
