/**
 * The in-process store's fixed-window counters (`addToWindow`, `addToWindows`: rpm/tpm budgets), each window kept
 * for its length after its last change and swept as writes go by.
 */

import { type Entry, sweep } from "./expiring.ts";
import type { WindowCounter, WindowReply } from "./store.ts";

export class MemoryWindows {
  readonly #now: () => number;
  readonly #windows = new Map<string, Entry<number>>();
  #sweep: Iterator<[string, Entry<number>]> | null = null;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Windows held, expired ones not yet swept included. */
  get size(): number {
    return this.#windows.size;
  }

  clear(): void {
    this.#windows.clear();
    this.#sweep = null;
  }

  add(key: string, amount: number, windowMs: number, now: number): Promise<number> {
    if (!(windowMs > 0)) {
      return Promise.reject(new RangeError(`addToWindow '${key}': windowMs must be > 0, got ${windowMs}`));
    }
    const clock = this.#now();
    this.#sweep = sweep(this.#windows, this.#sweep, clock);
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

  addAll(
    scope: string,
    counters: readonly WindowCounter[],
    windowMs: number,
    now: number,
  ): Promise<WindowReply> {
    if (!(windowMs > 0)) {
      return Promise.reject(new RangeError(`addToWindows '${scope}': windowMs must be > 0, got ${windowMs}`));
    }
    const clock = this.#now();
    this.#sweep = sweep(this.#windows, this.#sweep, clock);
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
}

/** The limit rule of `addToWindows` (the Redis script mirrors it). */
function refuses(total: number, amount: number, limit: number | undefined): boolean {
  return limit !== undefined && amount > 0 && total > 0 && total + amount > limit;
}
