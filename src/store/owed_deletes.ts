/**
 * Conditional deletes (`deleteIfEquals`: a lock's release) that `FallbackStore` served locally while a Redis node
 * was away, owed to that node once it answers again. A lock script whose reply was lost may have taken the key on
 * the node, where other instances would otherwise wait on it until its TTL. Bounded: past `MAX_OWED` the rest are
 * left to their TTL.
 */

import type { Store } from "./store.ts";

/** Owed deletes kept at most (each is a lock key and a token, so a few hundred bytes). */
const MAX_OWED = 10_000;

export class OwedDeletes {
  /** node -> key -> the value the key must still hold to be deleted. */
  readonly #owed = new Map<string, Map<string, string>>();
  #count = 0;

  get size(): number {
    return this.#count;
  }

  owe(node: string, key: string, value: string): void {
    if (this.#count >= MAX_OWED) return;
    const owed = this.#owed.get(node) ?? new Map<string, string>();
    this.#owed.set(node, owed);
    if (!owed.has(key)) this.#count++;
    owed.set(key, value);
  }

  /**
   * Sends `node`'s owed deletes ahead of a call to it. When the call retries a node that is away (`retry`), one
   * goes first, alone, as the probe (all were sent again with every retry), and the rest only once `answered`
   * says it got an answer; false when it did not: the call goes local and the delete stays owed.
   */
  async payAhead(
    node: string,
    primary: Store,
    retry: boolean,
    answered: (pending: Promise<unknown>) => Promise<boolean>,
  ): Promise<boolean> {
    const owed = this.#owed.get(node);
    if (owed === undefined) return true;
    // Another call may have taken the only one as its probe: then there is none to probe with.
    const first = retry ? owed.entries().next().value : undefined;
    if (first !== undefined) {
      const [key, value] = first;
      owed.delete(key);
      this.#count--;
      if (!(await answered(primary.deleteIfEquals(key, value)))) {
        this.owe(node, key, value);
        return false;
      }
    }
    this.pay(node, primary);
    return true;
  }

  /** Sends what is owed to `node`, in the background; a delete that fails is owed again, for the next try. */
  pay(node: string, primary: Store): void {
    const owed = this.#owed.get(node);
    if (owed === undefined) return;
    this.#owed.delete(node);
    this.#count -= owed.size;
    for (const [key, value] of owed) {
      primary.deleteIfEquals(key, value).catch(() => this.owe(node, key, value));
    }
  }
}
