/**
 * Counters, leases and tallies for per-key limits and usage accounting (`src/keys/`, `src/usage/`): the types the
 * `Store` methods `charge`, `release`, `addToTally` and `readTally` speak, and their in-memory implementation
 * (used by the memory store and by the local fallback while Redis is away).
 *
 * - A counter is an integer with its own expiry; the window it counts (a minute, a day, a month) is part of its
 *   name, so one atomic `charge` can check a per-minute rate and a monthly budget together.
 * - A lease is one in-flight request holding a place among at most `limit` (max parallel requests). Each lease
 *   expires by itself at `until`, so the places of an instance that died come back.
 * - A tally is a map of named integer sums (one day's usage, by key, model group and endpoint).
 */

/** One counter of a `charge` call. */
export interface Counter {
  /** The counter's name inside its scope, window included (`rpm:29406000`). */
  readonly name: string;
  /** Added when the call is admitted, rounded to an integer; 0 only checks or reads, a negative amount corrects. */
  readonly amount: number;
  /**
   * Refuses the call when the counter would go past it: a positive amount that would take a non-zero total above
   * `limit` (so one request larger than the whole limit still passes an empty window), or an amount of 0 while
   * the total already is `limit` or more (a budget that is spent). Absent: no limit.
   */
  readonly limit?: number;
  /** How long the counter lives after this call changes it, in milliseconds. */
  readonly ttlMs: number;
}

/** A place among at most `limit` concurrent holders of `name`, taken by `charge` together with its counters. */
export interface Lease {
  readonly name: string;
  /** Identifies this holder, for `release`. */
  readonly token: string;
  readonly limit: number;
  /** Epoch ms now, and when this lease lapses by itself if never released. */
  readonly now: number;
  readonly until: number;
}

export interface ChargeReply {
  /** True when every counter fits and the lease (if any) was taken; then the amounts were added. */
  readonly admitted: boolean;
  /** Index of the first counter that refused, `counters.length` when the lease did; -1 when admitted. */
  readonly refused: number;
  /** Each counter's total after the call (before it, when refused), in the order given. */
  readonly totals: readonly number[];
  /** Live leases of `name` after the call. */
  readonly leases: number;
}

/**
 * Amounts of one tally write that may be sent more than once (`Store.addToTallyOnce`): applied only when `seq` is
 * above the highest one already applied for its writer at that key.
 */
export interface TallyChunk {
  readonly seq: number;
  readonly amounts: Readonly<Record<string, number>>;
}

/** Whether `amount` is refused by `limit` at `total` (see `Counter.limit`). */
export function refusedBy(total: number, amount: number, limit: number | undefined): boolean {
  if (limit === undefined) return false;
  return amount > 0 ? total > 0 && total + amount > limit : amount === 0 && total >= limit;
}

interface Timed<T> {
  value: T;
  expiresAt: number;
}

/** Entries inspected per write for expiry (as in the memory store). */
const SWEEP_STEP = 8;

/** The in-memory counters, leases and tallies of one store. */
export class MemoryCounters {
  readonly #now: () => number;
  readonly #counters = new Map<string, Timed<number>>();
  readonly #leases = new Map<string, Timed<Map<string, number>>>();
  readonly #tallies = new Map<string, Timed<Map<string, number>>>();
  #sweep: Iterator<[string, Timed<number>]> | null = null;

  constructor(now: () => number) {
    this.#now = now;
  }

  charge(scope: string, counters: readonly Counter[], lease?: Lease): Promise<ChargeReply> {
    const clock = this.#now();
    this.#sweepSome(clock);
    const keys = counters.map((counter) => `${scope}\u0000${counter.name}`);
    const totals = keys.map((key) => this.#live(this.#counters, key, clock)?.value ?? 0);
    let refused = counters.findIndex((counter, i) =>
      refusedBy(totals[i], Math.round(counter.amount), counter.limit)
    );
    const holders = lease ? this.#holders(`${scope}\u0000${lease.name}`, lease.now, clock) : undefined;
    if (refused < 0 && lease && holders!.size >= lease.limit) refused = counters.length;
    if (refused >= 0) {
      return Promise.resolve({ admitted: false, refused, totals, leases: holders?.size ?? 0 });
    }
    counters.forEach((counter, i) => {
      const amount = Math.round(counter.amount);
      if (amount === 0) return;
      totals[i] += amount;
      this.#counters.set(keys[i], { value: totals[i], expiresAt: clock + counter.ttlMs });
    });
    if (lease && holders) {
      holders.set(lease.token, lease.until);
      const entry = this.#leases.get(`${scope}\u0000${lease.name}`)!;
      entry.expiresAt = Math.max(entry.expiresAt, clock + Math.max(1, lease.until - lease.now));
    }
    return Promise.resolve({ admitted: true, refused: -1, totals, leases: holders?.size ?? 0 });
  }

  release(scope: string, name: string, token: string, counters: readonly Counter[] = []): Promise<void> {
    this.#leases.get(`${scope}\u0000${name}`)?.value.delete(token);
    // No limit is checked: what a request spent is charged whatever it comes to.
    if (counters.length > 0) {
      void this.charge(scope, counters.map(({ name, amount, ttlMs }) => ({ name, amount, ttlMs })));
    }
    return Promise.resolve();
  }

  addToTally(key: string, amounts: Readonly<Record<string, number>>, ttlMs: number): Promise<void> {
    const clock = this.#now();
    let entry = this.#live(this.#tallies, key, clock);
    if (!entry) {
      entry = { value: new Map(), expiresAt: 0 };
      this.#tallies.set(key, entry);
    }
    for (const [field, amount] of Object.entries(amounts)) {
      const add = Math.round(amount);
      if (add !== 0) entry.value.set(field, (entry.value.get(field) ?? 0) + add);
    }
    entry.expiresAt = clock + ttlMs;
    return Promise.resolve();
  }

  readTally(key: string): Promise<Record<string, number>> {
    const entry = this.#live(this.#tallies, key, this.#now());
    return Promise.resolve(entry ? Object.fromEntries(entry.value) : {});
  }

  clear(): void {
    this.#counters.clear();
    this.#leases.clear();
    this.#tallies.clear();
    this.#sweep = null;
  }

  get size(): number {
    return this.#counters.size + this.#leases.size + this.#tallies.size;
  }

  /** The live holders of a lease name, lapsed ones dropped (created empty when absent). */
  #holders(key: string, now: number, clock: number): Map<string, number> {
    let entry = this.#live(this.#leases, key, clock);
    if (!entry) {
      entry = { value: new Map(), expiresAt: clock };
      this.#leases.set(key, entry);
    }
    for (const [token, until] of entry.value) if (until <= now) entry.value.delete(token);
    return entry.value;
  }

  #live<T>(map: Map<string, Timed<T>>, key: string, clock: number): Timed<T> | undefined {
    const entry = map.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > clock) return entry;
    map.delete(key);
    return undefined;
  }

  /** Removes a few expired counters per call, resuming where the last call stopped. */
  #sweepSome(clock: number): void {
    this.#sweep ??= this.#counters.entries();
    for (let i = 0; i < SWEEP_STEP; i++) {
      const next = this.#sweep.next();
      if (next.done) {
        this.#sweep = null;
        if (this.#leases.size > 64) this.#sweepLeases(clock);
        return;
      }
      if (next.value[1].expiresAt <= clock) this.#counters.delete(next.value[0]);
    }
  }

  #sweepLeases(clock: number): void {
    for (const [key, entry] of this.#leases) if (entry.expiresAt <= clock) this.#leases.delete(key);
    for (const [key, entry] of this.#tallies) if (entry.expiresAt <= clock) this.#tallies.delete(key);
  }
}
