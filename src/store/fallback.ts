/**
 * What the proxy uses when Redis is configured: every call goes to the primary (Redis) store; while the node that
 * holds the call's key is away, the same call is served by a local MemoryStore, so the proxy keeps working on
 * this instance's own state for those keys and on shared state for the rest (per node on a Redis Cluster: a lost
 * master costs only the keys that live on it).
 *
 * No call waits on the primary longer than `waitMs` (default 250 ms; more only where Redis's recent answers were
 * slow, see `WaitBound`): one that gets no answer by then is served locally, and its node is left alone for
 * `retryAfterMs` (then one call tries it again, or the late answer clears it). A primary that reports
 * itself disconnected is not waited on at all. One warning per node going down, one info line when it answers.
 */

import { FallbackHealth } from "./fallback_health.ts";
import { MemoryStore } from "./memory.ts";
import { NodeCalls, type Owed, READ } from "./node_calls.ts";
import { Outages, WaitBound } from "./outages.ts";
import { OwedDeletes } from "./owed_deletes.ts";
import { OwedSets } from "./owed_sets.ts";
import { SpentWrites } from "./spent_writes.ts";
import type { StoreLogger } from "./redis_client.ts";
import type {
  ChargeReply,
  CooldownReason,
  Counter,
  EndpointHealth,
  FailureOptions,
  Lease,
  PrefixUsage,
  ReadOrLock,
  RelayAppend,
  RelayEntry,
  Store,
  StoreStatus,
  WindowCounter,
  WindowReply,
} from "./store.ts";
import { StoreUnavailableError } from "./store.ts";

export interface FallbackStoreOptions {
  readonly primary: Store;
  /** Local state while the primary is away; default a fresh MemoryStore. */
  readonly local?: MemoryStore;
  readonly logger?: StoreLogger;
  /** How long to serve a node locally after a failed call before trying it again; default 1000 ms. */
  readonly retryAfterMs?: number;
  /**
   * The most a call waits on the primary before it is served locally; default 250 ms. Where Redis's recent
   * answers were slow, twice the slowest of them, at most 1 s (`WaitBound`).
   */
  readonly waitMs?: number;
  /**
   * Prefixes of the records written locally during an outage that are written to the primary too once it
   * answers (only where absent there); default none.
   */
  readonly mergeBack?: readonly string[];
  /** Epoch milliseconds; defaults to `Date.now`. */
  readonly now?: () => number;
}

export class FallbackStore implements Store {
  readonly #primary: Store;
  readonly #local: MemoryStore;
  readonly #outages: Outages;
  readonly #bound: WaitBound;
  /** Conditional deletes served locally during an outage, for the primary once it is back. */
  readonly #owed = new OwedDeletes();
  readonly #calls: NodeCalls;
  /** Tallies, charges and stream entries: sent once, or owed while kept locally alone during an outage. */
  readonly #spent: SpentWrites;
  /** Records under `mergeBack` prefixes written locally during an outage, for the primary once it is back. */
  readonly #sets: OwedSets;
  /** Endpoint health, and this process's copy of it for requests to pick from at once (`health_mirror.ts`). */
  readonly #health: FallbackHealth;

  constructor(options: FallbackStoreOptions) {
    this.#primary = options.primary;
    this.#local = options.local ?? new MemoryStore();
    this.#bound = new WaitBound(options.waitMs ?? 250);
    this.#outages = new Outages(
      options.primary.kind,
      options.logger ?? (() => {}),
      options.retryAfterMs ?? 1000,
      options.now ?? Date.now,
    );
    this.#sets = new OwedSets(options.mergeBack ?? [], options.now ?? Date.now);
    const owed: Owed[] = [this.#sets];
    this.#calls = new NodeCalls(this.#primary, this.#local, this.#outages, this.#bound, this.#owed, owed);
    this.#spent = new SpentWrites(
      this.#local,
      this.#calls,
      options.now ?? Date.now,
      options.logger ?? (() => {}),
    );
    owed.push(...this.#spent.owed);
    this.#health = new FallbackHealth(this.#calls, this);
  }

  get kind(): Store["kind"] {
    return this.#primary.kind;
  }

  /** Read from the store (and kept in this process's copy). */
  readHealth(ids: readonly string[]): Promise<EndpointHealth[]> {
    return this.#health.read(ids);
  }

  /** This process's copy: its own writes at once, other instances' within `REFRESH_MS` (`health_mirror.ts`). */
  readHealthNow(ids: readonly string[]): EndpointHealth[] | undefined {
    return this.#health.readNow(ids);
  }

  recordFailure = (id: string, options: FailureOptions) => this.#health.recordFailure(id, options);
  recordSuccess = (id: string) => this.#health.recordSuccess(id);
  coolDown = (id: string, forMs: number, reason: CooldownReason) => this.#health.coolDown(id, forMs, reason);

  get(key: string): Promise<string | null> {
    return this.#calls.call({ key }, (store) => store.get(key), READ);
  }

  /**
   * Asks the primary even while the key's node is served locally, and waits for it up to `waitMs` at least; not a
   * node silent for `waitMs` already (hung or gone), but for the one call a period that tries it. Served locally
   * with no record there: `StoreUnavailableError` (this instance cannot tell whether the record exists).
   */
  getPatiently(key: string, waitMs: number): Promise<string | null> {
    return this.#calls.call({ key }, async (store) => {
      const value = await store.get(key);
      if (value === null && store === this.#local) throw new StoreUnavailableError(key);
      // Written here while Redis was away and not merged back yet: the record is this instance's.
      return value ?? this.#sets.of(key);
    }, { read: true, patienceMs: waitMs });
  }

  /** Written locally during an outage under a merged prefix, the record is owed to the primary (`OwedSets`). */
  set(key: string, value: string, ttlMs?: number): Promise<void> {
    return this.#calls.call({ key }, (store, node) => {
      if (store === this.#local) this.#sets.owe(node, key, value, ttlMs);
      return store.set(key, value, ttlMs);
    });
  }

  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.#calls.call({ key }, async (store, node) => {
      const stored = await store.setIfAbsent(key, value, ttlMs);
      if (stored && store === this.#local) this.#sets.owe(node, key, value, ttlMs);
      return stored;
    });
  }

  readOrLock(key: string, lock: string, token: string, ttlMs: number): Promise<ReadOrLock> {
    return this.#calls.call({ key }, (store) => store.readOrLock(key, lock, token, ttlMs));
  }

  /** The lock's release is owed to the primary when served locally, as for `deleteIfEquals`. */
  setAndUnlock(key: string, value: string, ttlMs: number, lock: string, token: string): Promise<boolean> {
    return this.#calls.call({ key }, (store, node) => {
      if (store === this.#local) this.#owed.owe(node, lock, token);
      return store.setAndUnlock(key, value, ttlMs, lock, token);
    });
  }

  /** Also removes the key locally, so a later outage never brings back what was deleted. */
  delete(key: string): Promise<boolean> {
    this.#sets.forget(key);
    return this.#calls.call({ key }, (store) => {
      if (store !== this.#local) void this.#local.delete(key);
      return store.delete(key);
    });
  }

  /**
   * Served locally during an outage, the delete is also owed to the primary, and sent there ahead of the next
   * command that tries it. A lock script whose reply was lost may have taken the key on the primary, where other
   * instances would otherwise wait on it until its TTL.
   */
  deleteIfEquals(key: string, value: string): Promise<boolean> {
    return this.#calls.call({ key }, (store, node) => {
      if (store === this.#local) this.#owed.owe(node, key, value);
      return store.deleteIfEquals(key, value);
    });
  }

  /** Served locally, false: a lock taken in this process is not kept alive (it only lasts an outage). */
  extendIfEquals(key: string, value: string, ttlMs: number): Promise<boolean> {
    const extend = (store: Store) => store.extendIfEquals?.(key, value, ttlMs) ?? Promise.resolve(false);
    return this.#calls.call({ key }, extend);
  }

  /** Also removes the prefix locally, so a later outage never brings back what was deleted. */
  deleteByPrefix(prefix: string): Promise<number> {
    return this.#calls.everyNode((store) => {
      if (store !== this.#local) void this.#local.deleteByPrefix(prefix);
      return store.deleteByPrefix(prefix);
    });
  }

  /** Local figures while any node is away: a SCAN on a hung node would hold `/stats` until its command timeout. */
  usage(prefix: string): Promise<PrefixUsage> {
    if (this.status() === "degraded") return this.#local.usage(prefix);
    return this.#calls.everyNode((store) =>
      store.usage ? store.usage(prefix) : Promise.resolve({ entries: 0, bytes: 0 })
    );
  }

  addToWindow(key: string, amount: number, windowMs: number, now: number): Promise<number> {
    return this.#calls.call({ window: key }, (store) => store.addToWindow(key, amount, windowMs, now));
  }

  addToWindows(
    scope: string,
    counters: readonly WindowCounter[],
    windowMs: number,
    now: number,
  ): Promise<WindowReply> {
    return this.#calls.call({ window: scope }, (store) => store.addToWindows(scope, counters, windowMs, now));
  }

  charge(scope: string, counters: readonly Counter[], lease?: Lease): Promise<ChargeReply> {
    return this.#spent.charge(scope, counters, lease);
  }

  release(scope: string, name: string, token: string, counters?: readonly Counter[]): Promise<void> {
    return this.#spent.release(scope, name, token, counters);
  }

  addToTally(key: string, amounts: Readonly<Record<string, number>>, ttlMs: number): Promise<void> {
    return this.#spent.addToTally(key, amounts, ttlMs);
  }

  readTally(key: string): Promise<Record<string, number>> {
    return this.#spent.readTally(key);
  }

  appendToStream(key: string, fields: Readonly<Record<string, string>>, maxLen: number): Promise<void> {
    if (!this.#primary.appendToStream) return Promise.resolve();
    return this.#spent.appendToStream(key, fields, maxLen);
  }

  subscribe(channel: string, onMessage: (message: string | null) => void): () => Promise<void> {
    return this.#primary.subscribe?.(channel, onMessage) ?? (() => Promise.resolve());
  }

  /** Not sent while the primary is away: there is no one to tell but this instance. */
  async publish(channel: string, message: string): Promise<void> {
    if (this.#primary.status() === "degraded" || !this.#primary.publish) return;
    await this.#primary.publish(channel, message);
  }

  /** Relays live only in Redis: refused while the key's node is served locally, bounded like every call. */
  appendToRelay(key: string, entry: RelayAppend, ttlMs: number): Promise<string> {
    return this.#calls.onlyShared(key, (store) => store.appendToRelay?.(key, entry, ttlMs));
  }
  readRelay(key: string, after: string, count: number): Promise<RelayEntry[]> {
    return this.#calls.onlyShared(key, (store) => store.readRelay?.(key, after, count));
  }

  /** "degraded" while the primary is disconnected or any of its nodes is served locally. */
  status(): StoreStatus {
    if (this.#primary.status() === "degraded") return "degraded";
    return this.#outages.size > 0 && this.#outages.nodes().length > 0 ? "degraded" : "ok";
  }

  /** Nodes served locally now, and those the primary knows to be disconnected. */
  nodesDown(): string[] {
    const nodes = new Set([...this.#primary.nodesDown?.() ?? [], ...this.#outages.nodes()]);
    return [...nodes].sort();
  }

  async close(): Promise<void> {
    await this.#health.close();
    await Promise.all([this.#primary.close(), this.#local.close()]);
  }
}
