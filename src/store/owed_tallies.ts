/**
 * Usage tallies (`addToTally`) that `FallbackStore` counted on local state alone while a Redis node was left alone
 * (or the primary was disconnected), owed to that node and sent once it answers again: nothing counted is lost to
 * an outage. A call that went out to the node and outlived its wait is not owed: the node runs it when it resumes.
 * Amounts owed to one key are summed, so what is kept grows with the tallies' fields, not with the writes.
 */

import { isAnswer, mayStillRun } from "./outages.ts";
import type { Store } from "./store.ts";

/** Tally keys owed at most (usage writes one a day); past it, what is counted meanwhile stays local. */
const MAX_KEYS = 1000;

interface Owed {
  readonly amounts: Map<string, number>;
  ttlMs: number;
}

export class OwedTallies {
  /** node -> tally key -> what it is owed. */
  readonly #owed = new Map<string, Map<string, Owed>>();
  #count = 0;

  get size(): number {
    return this.#count;
  }

  owe(node: string, key: string, amounts: Readonly<Record<string, number>>, ttlMs: number): void {
    let keys = this.#owed.get(node);
    let owed = keys?.get(key);
    if (owed === undefined) {
      if (this.#count >= MAX_KEYS) return;
      if (keys === undefined) this.#owed.set(node, keys = new Map());
      keys.set(key, owed = { amounts: new Map(), ttlMs });
      this.#count++;
    }
    owed.ttlMs = Math.max(owed.ttlMs, ttlMs);
    for (const field in amounts) owed.amounts.set(field, (owed.amounts.get(field) ?? 0) + amounts[field]);
  }

  /** What `key` is owed now, on any node (undefined: nothing), for a read of its tally to add. */
  of(key: string): Record<string, number> | undefined {
    if (this.#count === 0) return undefined;
    for (const keys of this.#owed.values()) {
      const owed = keys.get(key);
      if (owed !== undefined) return Object.fromEntries(owed.amounts);
    }
    return undefined;
  }

  /**
   * Sends what `node` is owed, in the background. A write the node refused or never got is owed again; one that
   * timed out is not (it went out: the node runs it when it resumes), nor one it answered with an error.
   */
  pay(node: string, primary: Store): void {
    const keys = this.#owed.get(node);
    if (keys === undefined) return;
    this.#owed.delete(node);
    this.#count -= keys.size;
    for (const [key, { amounts, ttlMs }] of keys) {
      const record = Object.fromEntries(amounts);
      primary.addToTally(key, record, ttlMs).catch((error) => {
        if (!isAnswer(error, primary) && !mayStillRun(error)) this.owe(node, key, record, ttlMs);
      });
    }
  }
}

/** `tally` with `owed` added to it. */
export function withOwed(
  tally: Record<string, number>,
  owed: Readonly<Record<string, number>>,
): Record<string, number> {
  const sum = { ...tally };
  for (const field in owed) sum[field] = (sum[field] ?? 0) + owed[field];
  return sum;
}
