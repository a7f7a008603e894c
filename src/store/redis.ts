/**
 * The shared store over Redis (standalone, Cluster or Sentinel) with ioredis. Key layout, all under `${namespace}:`:
 *
 * - `${ns}:{${id}}:health`                  hash { failures, until, reason } of one endpoint; `until` in Redis's
 *                                            clock (TIME), which the instances never compare with their own
 * - `${ns}:{${scope}}:w:${name}:${start}`   counters of one fixed window (`{${key}}:w:${start}` for one counter)
 * - `${ns}:${key}`                           plain values (cache entries, affinity, coalescing locks); a cache entry
 *                                            `cache:{sha}` and its lock `coalesce:{sha}` share the sha as hash tag,
 *                                            so `readOrLock` can touch both; `relay:{sha}:<id>` are the Redis
 *                                            Streams of `appendToRelay` / `readRelay`
 *
 * Every Lua command is defined with its key count, so ioredis routes it (and groups it into a Cluster
 * auto-pipeline) by its first key; every key one script touches carries the same hash tag, so the scripts run
 * unchanged on a cluster. `nodeOf` names the node a key lives on, for `FallbackStore`'s per-node fallback.
 */

import { Cluster, ReplyError } from "ioredis";
import calculateSlot from "cluster-key-slot";
import type {
  CooldownReason,
  EndpointHealth,
  FailureOptions,
  NodeTarget,
  PrefixUsage,
  ReadOrLock,
  Store,
  StoreStatus,
  WindowCounter,
  WindowReply,
} from "./store.ts";
import { ADD_TO_WINDOWS, fromScript, ONE_KEY_SCRIPTS, READ_OR_LOCK, type Scripts } from "./redis_scripts.ts";
import { type HealthReply, SET_AND_UNLOCK } from "./redis_scripts.ts";
import { appendToRelay, readRelay } from "./redis_relay.ts";
import {
  type Client,
  createClient,
  describeTarget,
  readTlsFiles,
  type RedisStoreOptions,
  type StoreLogger,
} from "./redis_client.ts";
import { deleteByPrefix, usageByPrefix } from "./redis_scan.ts";
import { ConnectionWatch } from "./redis_watch.ts";
import { RedisCounters } from "./redis_counters.ts";

export type { RedisStoreOptions, StoreLogger } from "./redis_client.ts";

export class RedisStore implements Store {
  readonly kind = "redis" as const;
  readonly #client: Client;
  readonly #scripts: Scripts;
  readonly #ns: string;
  readonly #now: () => number;
  readonly #watch: ConnectionWatch;
  /** Where we connect, without credentials: the one node's name when not a Cluster. */
  readonly #target: string;
  readonly #counters: RedisCounters;
  /** Key counts for which an `llmproxyAddToWindows${n}` command is defined. */
  readonly #windowCommands = new Set<number>();

  /** Connects and waits for the first attempt to end; a Redis that is away yields a degraded store that retries. */
  static async connect(options: RedisStoreOptions): Promise<RedisStore> {
    const store = new RedisStore(await readTlsFiles(options));
    await store.#watch.firstAttempt(options.connectTimeoutMs ?? 1000);
    return store;
  }

  private constructor(options: RedisStoreOptions) {
    this.#ns = options.namespace ?? "llmproxy";
    this.#now = options.now ?? Date.now;
    this.#client = createClient(options);
    for (const [name, lua] of Object.entries(ONE_KEY_SCRIPTS)) {
      this.#client.defineCommand(name, { lua, numberOfKeys: 1 });
    }
    this.#client.defineCommand("llmproxyReadOrLock", { lua: READ_OR_LOCK, numberOfKeys: 2 });
    this.#client.defineCommand("llmproxySetAndUnlock", { lua: SET_AND_UNLOCK, numberOfKeys: 2 });
    // Up front: a command defined while an auto-pipeline is open breaks that batch inside ioredis.
    for (let n = 1; n <= 4; n++) this.#windowsCommand(n);
    this.#scripts = this.#client as unknown as Scripts;
    this.#target = describeTarget(options);
    this.#watch = new ConnectionWatch(this.#client, this.#target, options.logger ?? noLog);
    this.#counters = new RedisCounters(this.#client, this.#ns);
  }

  async readHealth(ids: readonly string[], aside = false): Promise<EndpointHealth[]> {
    if (ids.length === 0) return [];
    // Auto-pipelining sends these, and whatever else this tick asks for (the cache's lock script), in one write
    // (one per node on a Cluster). Aside: each in a pipeline of its own, since ioredis sends a node's next batch only
    // once the one before it is answered, and a read no request waits for must not hold up theirs.
    const replies = await Promise.all(ids.map((id) => this.#readHealthScript(this.#healthKey(id), aside)));
    const now = this.#now();
    return replies.map((reply) => fromScript(reply, now));
  }

  async recordFailure(id: string, options: FailureOptions): Promise<EndpointHealth> {
    const reply = await this.#scripts.llmproxyRecordFailure(
      this.#healthKey(id),
      options.allowedFails,
      Math.max(0, Math.round(options.cooldownMs)),
    );
    return fromScript(reply, this.#now());
  }

  async recordSuccess(id: string): Promise<void> {
    await this.#scripts.llmproxyRecordSuccess(this.#healthKey(id));
  }

  async coolDown(id: string, forMs: number, reason: CooldownReason): Promise<EndpointHealth> {
    const reply = await this.#scripts.llmproxyCoolDown(
      this.#healthKey(id),
      Math.max(0, Math.round(forMs)),
      reason,
    );
    return fromScript(reply, this.#now());
  }

  get(key: string): Promise<string | null> {
    return this.#client.get(this.#key(key));
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs !== undefined && ttlMs > 0) {
      await this.#client.set(this.#key(key), value, "PX", Math.ceil(ttlMs));
    } else await this.#client.set(this.#key(key), value);
  }

  async readOrLock(key: string, lock: string, token: string, ttlMs: number): Promise<ReadOrLock> {
    const ttl = Math.max(1, Math.ceil(ttlMs));
    const [found, reply] = await this.#scripts.llmproxyReadOrLock(
      this.#key(key),
      this.#key(lock),
      token,
      ttl,
    );
    return found === 1 ? { value: String(reply), locked: false } : { value: null, locked: reply === 1 };
  }

  async setAndUnlock(
    key: string,
    value: string,
    ttlMs: number,
    lock: string,
    token: string,
  ): Promise<boolean> {
    const ttl = ttlMs > 0 ? Math.ceil(ttlMs) : 0;
    return (await this.#scripts.llmproxySetAndUnlock(this.#key(key), this.#key(lock), value, ttl, token)) > 0;
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const reply = ttlMs > 0
      ? await this.#client.set(this.#key(key), value, "PX", Math.ceil(ttlMs), "NX")
      : await this.#client.set(this.#key(key), value, "NX");
    return reply === "OK";
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#client.unlink(this.#key(key))) > 0;
  }

  async deleteIfEquals(key: string, value: string): Promise<boolean> {
    return (await this.#scripts.llmproxyDeleteIfEquals(this.#key(key), value)) > 0;
  }

  async extendIfEquals(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.#scripts.llmproxyExtendIfEquals(
      this.#key(key),
      value,
      Math.max(1, Math.ceil(ttlMs)),
    )) > 0;
  }

  /** On a Cluster, every master that answers; fails only when none does (a lost master's keys went with it). */
  deleteByPrefix(prefix: string): Promise<number> {
    return deleteByPrefix(this.#client, this.#ns, prefix);
  }

  /** SCANs for the prefix (never KEYS) and sums the values' STRLEN, page by page, on every master. */
  usage(prefix: string): Promise<PrefixUsage> {
    return usageByPrefix(this.#client, this.#ns, prefix);
  }

  addToWindow(key: string, amount: number, windowMs: number, now: number): Promise<number> {
    if (!(windowMs > 0)) {
      return Promise.reject(new RangeError(`addToWindow '${key}': windowMs must be > 0, got ${windowMs}`));
    }
    const windowStart = Math.floor(now / windowMs) * windowMs;
    return this.#scripts.llmproxyAddToWindow(
      `${this.#ns}:{${key}}:w:${windowStart}`,
      Math.round(amount),
      Math.ceil(windowMs),
    );
  }

  async addToWindows(
    scope: string,
    counters: readonly WindowCounter[],
    windowMs: number,
    now: number,
  ): Promise<WindowReply> {
    if (!(windowMs > 0)) {
      throw new RangeError(`addToWindows '${scope}': windowMs must be > 0, got ${windowMs}`);
    }
    if (counters.length === 0) return { added: true, totals: [] };
    const windowStart = Math.floor(now / windowMs) * windowMs;
    const keys = counters.map((counter) => `${this.#ns}:{${scope}}:w:${counter.name}:${windowStart}`);
    const args = counters.flatMap((counter) => [Math.round(counter.amount), counter.limit ?? ""]);
    const [fits, ...totals] = await this.#windowsCommand(keys.length)(...keys, Math.ceil(windowMs), ...args);
    return { added: fits === 1, totals: totals.map(Number) };
  }

  /** ioredis's error reply (`ReplyError`), told by type: its `name` is its class's, renamed in a minified bundle. */
  isReply(error: Error): boolean {
    return error instanceof ReplyError;
  }

  /** Cluster: `host:port` of the master serving the target's slot. Otherwise the one server (or Sentinel set). */
  nodeOf(target: NodeTarget): string {
    const client = this.#client;
    if (!(client instanceof Cluster)) return this.#target;
    const key = target.health !== undefined
      ? this.#healthKey(target.health)
      : target.window !== undefined
      ? `{${target.window}}`
      : target.stream ?? this.#key(target.key);
    return client.slots[calculateSlot(key)]?.[0] ?? "unknown";
  }

  /** The whole target while the client is not connected (a Cluster's lost master is found by `FallbackStore`). */
  nodesDown(): string[] {
    return this.#watch.nodesDown();
  }

  charge: Store["charge"] = (scope, counters, lease) => this.#counters.charge(scope, counters, lease);
  release: Store["release"] = (scope, name, token, counters) =>
    this.#counters.release(scope, name, token, counters);
  addToTally: Store["addToTally"] = (key, amounts, ttlMs) => this.#counters.addToTally(key, amounts, ttlMs);
  addToTallyOnce: Store["addToTallyOnce"] = (key, writer, chunks, ttlMs) =>
    this.#counters.addToTallyOnce(key, writer, chunks, ttlMs);
  readTally: Store["readTally"] = (key) => this.#counters.readTally(key);
  appendToStream = (key: string, fields: Readonly<Record<string, string>>, maxLen: number) =>
    this.#counters.appendToStream(key, fields, maxLen);
  subscribe = (channel: string, onMessage: (message: string | null) => void) =>
    this.#counters.subscribe(channel, onMessage);
  publish = (channel: string, message: string) => this.#counters.publish(channel, message);
  appendToRelay: Store["appendToRelay"] = (key, entry, ttl) =>
    appendToRelay(this.#client, this.#key(key), entry, ttl);
  readRelay: Store["readRelay"] = (key, after, count) =>
    readRelay(this.#client, this.#key(key), after, count);

  status(): StoreStatus {
    return this.#client.status === "ready" ? "ok" : "degraded";
  }

  /** Quits (or drops a connection that is not up) and waits until the socket and every timer are gone. */
  async close(): Promise<void> {
    await this.#counters.close();
    return this.#watch.close();
  }

  /**
   * The window script defined for `n` keys: a Lua command defined without its key count takes the count as its
   * first argument, and a Cluster auto-pipeline would group it by the slot of that number instead of its keys.
   */
  #windowsCommand(n: number): (...args: (string | number)[]) => Promise<number[]> {
    const name = `llmproxyAddToWindows${n}`;
    if (!this.#windowCommands.has(n)) {
      this.#client.defineCommand(name, { lua: ADD_TO_WINDOWS, numberOfKeys: n });
      this.#windowCommands.add(n);
    }
    const client = this.#client as unknown as Record<
      string,
      (...args: (string | number)[]) => Promise<number[]>
    >;
    return client[name].bind(client);
  }

  #readHealthScript(key: string, aside: boolean): Promise<HealthReply | []> {
    if (!aside) return this.#scripts.llmproxyReadHealth(key);
    const pipeline = this.#client.pipeline();
    (pipeline as unknown as Scripts).llmproxyReadHealth(key);
    return pipeline.exec().then((results) => {
      const [error, reply] = results?.[0] ?? [new Error(`no reply reading '${key}'`), undefined];
      if (error) throw error;
      return reply as HealthReply | [];
    });
  }

  #key(key: string): string {
    return `${this.#ns}:${key}`;
  }

  #healthKey(id: string): string {
    return `${this.#ns}:{${id}}:health`;
  }
}

const noLog: StoreLogger = () => {};
