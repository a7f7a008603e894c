/**
 * What the proxy uses when Redis is configured: every call goes to the primary (Redis) store; while it is away
 * (status "degraded", or a call throws) the same call is served by a local MemoryStore, so the proxy keeps working
 * on this instance's own state. One warning per outage, one info line when the primary answers again.
 *
 * A primary that reports "ok" but fails calls (a hung server: every command times out) is skipped for
 * `retryAfterMs` after each failure, so requests do not each wait for a timeout; a primary that reported
 * "degraded" is tried again as soon as it reports "ok".
 */

import { MemoryStore } from "./memory.ts";
import type { StoreLogger } from "./redis.ts";
import type {
  CooldownReason,
  EndpointHealth,
  FailureOptions,
  PrefixUsage,
  ReadOrLock,
  Store,
  StoreStatus,
  WindowCounter,
  WindowReply,
} from "./store.ts";

export interface FallbackStoreOptions {
  readonly primary: Store;
  /** Local state while the primary is away; default a fresh MemoryStore. */
  readonly local?: MemoryStore;
  readonly logger?: StoreLogger;
  /** How long to serve locally after a failed primary call before trying the primary again; default 1000 ms. */
  readonly retryAfterMs?: number;
  /** Epoch milliseconds; defaults to `Date.now`. */
  readonly now?: () => number;
}

/** Owed deletes kept at most (each is a lock key and a token, so a few hundred bytes). */
const MAX_OWED = 10_000;

export class FallbackStore implements Store {
  readonly #primary: Store;
  readonly #local: MemoryStore;
  readonly #log: StoreLogger;
  readonly #retryAfterMs: number;
  readonly #now: () => number;
  #outage = false;
  /** Conditional deletes served locally during an outage, for the primary once it is back: key -> value. */
  readonly #owed = new Map<string, string>();
  /** While in an outage caused by failing calls: when to try the primary again. */
  #retryAt = 0;

  constructor(options: FallbackStoreOptions) {
    this.#primary = options.primary;
    this.#local = options.local ?? new MemoryStore();
    this.#log = options.logger ?? (() => {});
    this.#retryAfterMs = options.retryAfterMs ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  get kind(): Store["kind"] {
    return this.#primary.kind;
  }

  readHealth(ids: readonly string[]): Promise<EndpointHealth[]> {
    return this.#call((store) => store.readHealth(ids));
  }

  recordFailure(id: string, options: FailureOptions): Promise<EndpointHealth> {
    return this.#call((store) => store.recordFailure(id, options));
  }

  recordSuccess(id: string): Promise<void> {
    return this.#call((store) => store.recordSuccess(id));
  }

  coolDown(id: string, until: number, reason: CooldownReason): Promise<EndpointHealth> {
    return this.#call((store) => store.coolDown(id, until, reason));
  }

  get(key: string): Promise<string | null> {
    return this.#call((store) => store.get(key));
  }

  set(key: string, value: string, ttlMs?: number): Promise<void> {
    return this.#call((store) => store.set(key, value, ttlMs));
  }

  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.#call((store) => store.setIfAbsent(key, value, ttlMs));
  }

  readOrLock(key: string, lock: string, token: string, ttlMs: number): Promise<ReadOrLock> {
    return this.#call((store) => store.readOrLock(key, lock, token, ttlMs));
  }

  /** The lock's release is owed to the primary when served locally, as for `deleteIfEquals`. */
  setAndUnlock(key: string, value: string, ttlMs: number, lock: string, token: string): Promise<boolean> {
    return this.#call((store) => {
      if (store === this.#local) this.#owe(lock, token);
      return store.setAndUnlock(key, value, ttlMs, lock, token);
    });
  }

  /** Also removes the key locally, so a later outage never brings back what was deleted. */
  delete(key: string): Promise<boolean> {
    return this.#call((store) => {
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
    return this.#call((store) => {
      if (store === this.#local) this.#owe(key, value);
      return store.deleteIfEquals(key, value);
    });
  }

  /** Also removes the prefix locally, so a later outage never brings back what was deleted. */
  deleteByPrefix(prefix: string): Promise<number> {
    return this.#call((store) => {
      if (store !== this.#local) void this.#local.deleteByPrefix(prefix);
      return store.deleteByPrefix(prefix);
    });
  }

  usage(prefix: string): Promise<PrefixUsage> {
    return this.#call((store) =>
      store.usage ? store.usage(prefix) : Promise.resolve({ entries: 0, bytes: 0 })
    );
  }

  addToWindow(key: string, amount: number, windowMs: number, now: number): Promise<number> {
    return this.#call((store) => store.addToWindow(key, amount, windowMs, now));
  }

  addToWindows(
    scope: string,
    counters: readonly WindowCounter[],
    windowMs: number,
    now: number,
  ): Promise<WindowReply> {
    return this.#call((store) => store.addToWindows(scope, counters, windowMs, now));
  }

  status(): StoreStatus {
    return this.#primary.status();
  }

  async close(): Promise<void> {
    await Promise.all([this.#primary.close(), this.#local.close()]);
  }

  async #call<T>(operation: (store: Store) => Promise<T>): Promise<T> {
    if (this.#primary.status() === "degraded") {
      this.#enterOutage("status degraded");
      this.#retryAt = 0;
      return operation(this.#local);
    }
    if (this.#outage && this.#retryAt > this.#now()) return operation(this.#local);
    // Owed deletes go first: commands reach the primary in the order they are issued, so no lock this call (or a
    // later one) takes can be removed by a delete owed from before.
    if (this.#owed.size > 0) this.#payOwed();
    let result: T;
    try {
      result = await operation(this.#primary);
    } catch (error) {
      // The server answered (out of memory, wrong type, value too big): Redis is there, this call failed.
      if (isAnswer(error)) throw error;
      this.#enterOutage(error instanceof Error ? error.message : String(error));
      this.#retryAt = this.#now() + this.#retryAfterMs;
      return operation(this.#local);
    }
    if (this.#outage) {
      this.#outage = false;
      this.#log("info", `${this.#primary.kind} store answers again; using shared state`);
    }
    return result;
  }

  #owe(key: string, value: string): void {
    if (this.#owed.size < MAX_OWED) this.#owed.set(key, value);
  }

  /** Sends the owed deletes, in the background; one that fails is owed again, for the next try. */
  #payOwed(): void {
    for (const [key, value] of this.#owed) {
      this.#primary.deleteIfEquals(key, value).catch(() => this.#owe(key, value));
    }
    this.#owed.clear();
  }

  #enterOutage(reason: string): void {
    if (this.#outage) return;
    this.#outage = true;
    this.#log("warn", `${this.#primary.kind} store unavailable; serving local state`, { reason });
  }
}

/** Errors that are an answer from a reachable server or a bad argument, not a sign that the server is away. */
function isAnswer(error: unknown): boolean {
  return error instanceof Error && (error.name === "ReplyError" || error instanceof RangeError);
}
