/**
 * Records that `FallbackStore` wrote on local state alone while their Redis node was away, under the prefixes it
 * merges back (a Responses record: which endpoint holds a response, its turn, whose it is), owed to that node and
 * written there once it answers, with the time they have left: another instance (or this one, once Redis answers
 * again) then finds them, instead of routing a continuation by weight to an endpoint that does not hold it. Written
 * only where absent (`setIfAbsent`): a record another instance wrote meanwhile wins, and a write sent twice is
 * harmless. Until then, a patient read that Redis answers with nothing gets the owed record. Bounded: at most
 * `MAX_OWED` records and `MAX_BYTES` of their values; past that, the rest stay local.
 */

import { isAnswer } from "./outages.ts";
import type { Store } from "./store.ts";

const MAX_OWED = 10_000;
/** Values' characters owed at most (a turn may be up to 1 MiB). */
const MAX_BYTES = 32 * 1024 * 1024;

interface Owed {
  readonly node: string;
  readonly value: string;
  /** Epoch milliseconds when the record expires. */
  readonly until: number;
}

export class OwedSets {
  readonly #prefixes: readonly string[];
  readonly #now: () => number;
  /** key -> what is owed. */
  readonly #owed = new Map<string, Owed>();
  #bytes = 0;

  constructor(prefixes: readonly string[], now: () => number) {
    this.#prefixes = prefixes;
    this.#now = now;
  }

  get size(): number {
    return this.#owed.size;
  }

  /** A record written locally alone: owed to `node` when its key is under a merged prefix (and it expires). */
  owe(node: string, key: string, value: string, ttlMs: number | undefined): void {
    if (ttlMs === undefined || !(ttlMs > 0) || !this.#prefixes.some((prefix) => key.startsWith(prefix))) {
      return;
    }
    this.forget(key);
    if (this.#owed.size >= MAX_OWED || this.#bytes + value.length > MAX_BYTES) return;
    this.#owed.set(key, { node, value, until: this.#now() + ttlMs });
    this.#bytes += value.length;
  }

  /** The record owed at `key` (not yet written to Redis), or null. */
  of(key: string): string | null {
    const owed = this.#owed.get(key);
    return owed !== undefined && owed.until > this.#now() ? owed.value : null;
  }

  /** A record deleted: nothing of it is owed any more. */
  forget(key: string): void {
    const owed = this.#owed.get(key);
    if (owed === undefined) return;
    this.#owed.delete(key);
    this.#bytes -= owed.value.length;
  }

  /** Writes what `node` is owed, in the background; a write that did not reach it is owed again. */
  pay(node: string, primary: Store): void {
    const now = this.#now();
    for (const [key, owed] of this.#owed) {
      if (owed.node !== node) continue;
      this.forget(key);
      if (owed.until <= now) continue;
      primary.setIfAbsent(key, owed.value, owed.until - now).catch((error) => {
        if (!isAnswer(error, primary) && !this.#owed.has(key)) {
          this.owe(node, key, owed.value, owed.until - now);
        }
      });
    }
  }
}
