/**
 * Key limit charges (`charge`: a request's place in its rate windows, its tokens and cost against its budgets)
 * that `FallbackStore` counted on local state alone while a Redis node was left alone (or Redis disconnected),
 * owed to that node and added there once it answers again, so the other instances see what this one spent. A
 * charge that went out and outlived its wait is not owed (the node runs it when it resumes). Counters whose window
 * ended meanwhile are not sent. Amounts owed to one counter are summed; at most `MAX_OWED` counters are owed.
 */

import type { Counter } from "./counters.ts";
import { isAnswer, mayStillRun } from "./outages.ts";
import type { Store } from "./store.ts";

/** Counters owed at most (a key's few windows each: a long outage with many keys stays within it). */
const MAX_OWED = 10_000;
/** Counters sent in one `charge` (Redis takes up to 12 keys in one). */
const PER_CALL = 8;

interface Owed {
  amount: number;
  /** Epoch milliseconds when the counter's window (and its key) ends. */
  until: number;
}

export class OwedCharges {
  readonly #now: () => number;
  /** node -> scope -> counter name -> what it is owed. */
  readonly #owed = new Map<string, Map<string, Map<string, Owed>>>();
  #count = 0;

  constructor(now: () => number) {
    this.#now = now;
  }

  get size(): number {
    return this.#count;
  }

  /** The amounts of a charge admitted on local state alone (not its limits, nor its lease: those stay local). */
  owe(node: string, scope: string, counters: readonly Counter[]): void {
    const now = this.#now();
    let scopes = this.#owed.get(node);
    for (const counter of counters) {
      const amount = Math.round(counter.amount);
      if (amount === 0) continue;
      if (scopes === undefined) this.#owed.set(node, scopes = new Map());
      let names = scopes.get(scope);
      if (names === undefined) scopes.set(scope, names = new Map());
      const owed = names.get(counter.name);
      const until = now + counter.ttlMs;
      if (owed !== undefined) {
        owed.amount += amount;
        owed.until = Math.max(owed.until, until);
      } else if (this.#count < MAX_OWED) {
        names.set(counter.name, { amount, until });
        this.#count++;
      }
    }
  }

  /** Sends what `node` is owed, in the background; a charge the node refused or never got is owed again. */
  pay(node: string, primary: Store): void {
    const scopes = this.#owed.get(node);
    if (scopes === undefined) return;
    this.#owed.delete(node);
    const now = this.#now();
    for (const [scope, names] of scopes) {
      this.#count -= names.size;
      const counters: Counter[] = [];
      for (const [name, { amount, until }] of names) {
        if (until > now) counters.push({ name, amount, ttlMs: until - now });
      }
      for (let i = 0; i < counters.length; i += PER_CALL) {
        const some = counters.slice(i, i + PER_CALL);
        primary.charge(scope, some).catch((error) => {
          if (!isAnswer(error, primary) && !mayStillRun(error)) this.owe(node, scope, some);
        });
      }
    }
  }
}
