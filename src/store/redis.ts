/**
 * The shared store over Redis (or Redis Cluster) with ioredis. Key layout, all under `${namespace}:`:
 *
 * - `${ns}:{${id}}:health`           hash { failures, until, reason } of one endpoint
 * - `${ns}:{${key}}:w:${windowStart}` counter of one fixed window
 * - `${ns}:${key}`                    plain values (cache entries, affinity, coalescing locks); a cache entry
 *                                     `cache:{sha}` and its lock `coalesce:{sha}` share the sha as hash tag, so
 *                                     `readOrLock` can touch both
 *
 * Every key one Lua script touches carries the same hash tag, so the scripts run unchanged on a cluster. Commands
 * fail fast while Redis is away (no offline queue, no retries, short timeouts) and the client reconnects forever in
 * the background; `FallbackStore` serves local state in the meantime.
 */

import { Cluster, Redis } from "ioredis";
import type { ClusterOptions, RedisOptions } from "ioredis";
import {
  type CooldownReason,
  type EndpointHealth,
  type FailureOptions,
  HEALTHY,
  type PrefixUsage,
  type ReadOrLock,
  type Store,
  type StoreStatus,
  type WindowCounter,
  type WindowReply,
} from "./store.ts";
import {
  ADD_TO_WINDOWS,
  type HealthReply,
  ONE_KEY_SCRIPTS,
  READ_OR_LOCK,
  type Scripts,
  SET_AND_UNLOCK,
} from "./redis_scripts.ts";

export type StoreLogger = (
  level: "info" | "warn" | "error",
  message: string,
  fields?: Record<string, unknown>,
) => void;

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://...`; wins over host/port. */
  readonly url?: string;
  readonly host?: string;
  readonly port?: number;
  readonly password?: string;
  readonly tls?: boolean;
  /** Seed nodes (`host:port`) of a Redis Cluster; when given, a cluster client is used. */
  readonly clusterNodes?: readonly string[];
  /** Prefix of every key; default "llmproxy". */
  readonly namespace?: string;
  readonly logger?: StoreLogger;
  /** Give up on one connection attempt after this long; default 1000 ms. */
  readonly connectTimeoutMs?: number;
  /**
   * Reject a command that got no reply this long after it was sent; default 1000 ms. Commands are auto-pipelined,
   * and one issued while an earlier batch awaits its reply is sent after it: against a hung server it can fail
   * up to twice this long after it was issued.
   */
  readonly commandTimeoutMs?: number;
}

type Client = Redis | Cluster;

const SCAN_COUNT = 500;

export class RedisStore implements Store {
  readonly kind = "redis" as const;
  readonly #client: Client;
  readonly #scripts: Scripts;
  readonly #ns: string;
  readonly #log: StoreLogger;
  /** Where we connect, without credentials, for log lines. */
  readonly #target: string;
  #down = false;
  #everReady = false;
  #closing = false;

  /** Connects and waits for the first attempt to end; a Redis that is away yields a degraded store that retries. */
  static async connect(options: RedisStoreOptions): Promise<RedisStore> {
    const store = new RedisStore(options);
    await store.#firstAttempt(options.connectTimeoutMs ?? 1000);
    return store;
  }

  private constructor(options: RedisStoreOptions) {
    this.#ns = options.namespace ?? "llmproxy";
    this.#log = options.logger ?? (() => {});
    this.#target = describeTarget(options);
    this.#client = createClient(options);
    for (const [name, lua] of Object.entries(ONE_KEY_SCRIPTS)) {
      this.#client.defineCommand(name, { lua, numberOfKeys: 1 });
    }
    this.#client.defineCommand("llmproxyAddToWindows", { lua: ADD_TO_WINDOWS });
    this.#client.defineCommand("llmproxyReadOrLock", { lua: READ_OR_LOCK, numberOfKeys: 2 });
    this.#client.defineCommand("llmproxySetAndUnlock", { lua: SET_AND_UNLOCK, numberOfKeys: 2 });
    this.#scripts = this.#client as unknown as Scripts;
    this.#client.on("ready", () => this.#onReady());
    this.#client.on("error", (error: Error) => {
      if (this.#client.status !== "ready") this.#onDown(error.message);
    });
    this.#client.on("close", () => this.#onDown("connection closed"));
  }

  async readHealth(ids: readonly string[]): Promise<EndpointHealth[]> {
    if (ids.length === 0) return [];
    // Auto-pipelining sends these, and whatever else this tick asks for (the cache's lock script), in one write
    // (one per node on a Cluster).
    const client = this.#client;
    const replies = await Promise.all(
      ids.map((id) => client.hmget(this.#healthKey(id), "failures", "until", "reason")),
    );
    return replies.map(toHealth);
  }

  async recordFailure(id: string, options: FailureOptions): Promise<EndpointHealth> {
    const reply = await this.#scripts.llmproxyRecordFailure(
      this.#healthKey(id),
      options.allowedFails,
      options.cooldownUntil,
    );
    return fromScript(reply);
  }

  async recordSuccess(id: string): Promise<void> {
    await this.#scripts.llmproxyRecordSuccess(this.#healthKey(id));
  }

  async coolDown(id: string, until: number, reason: CooldownReason): Promise<EndpointHealth> {
    return fromScript(await this.#scripts.llmproxyCoolDown(this.#healthKey(id), until, reason));
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
    const [found, reply] = await this.#scripts.llmproxyReadOrLock(
      this.#key(key),
      this.#key(lock),
      token,
      Math.max(1, Math.ceil(ttlMs)),
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

  async deleteByPrefix(prefix: string): Promise<number> {
    const match = `${escapeGlob(this.#key(prefix))}*`;
    // An empty prefix must not take the health and window keys (`${ns}:{...`) with it.
    const skip = prefix === "" ? `${this.#ns}:{` : null;
    const client = this.#client;
    const nodes = client instanceof Cluster ? client.nodes("master") : [client];
    const counts = await Promise.all(nodes.map((node) => deleteOnNode(node, match, skip, node !== client)));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** SCANs for the prefix (never KEYS) and sums the values' STRLEN, page by page, on every master. */
  async usage(prefix: string): Promise<PrefixUsage> {
    const match = `${escapeGlob(this.#key(prefix))}*`;
    const skip = prefix === "" ? `${this.#ns}:{` : null;
    const client = this.#client;
    const nodes = client instanceof Cluster ? client.nodes("master") : [client];
    const usages = await Promise.all(nodes.map((node) => usageOnNode(node, match, skip)));
    return usages.reduce((a, b) => ({ entries: a.entries + b.entries, bytes: a.bytes + b.bytes }), {
      entries: 0,
      bytes: 0,
    });
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
    const [fits, ...totals] = await this.#scripts.llmproxyAddToWindows(
      keys.length,
      ...keys,
      Math.ceil(windowMs),
      ...args,
    );
    return { added: fits === 1, totals: totals.map(Number) };
  }

  status(): StoreStatus {
    return this.#client.status === "ready" ? "ok" : "degraded";
  }

  /** Quits (or drops a connection that is not up) and waits until the socket and every timer are gone. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const client = this.#client;
    if (client.status === "end") return;
    const ended = new Promise<void>((resolve) => client.once("end", () => resolve()));
    if (client.status === "ready") {
      try {
        // QUIT is written at once, ahead of auto-pipelined commands still queued; a PING is queued behind them,
        // so once it is answered they all are.
        await client.ping().catch(() => {});
        await client.quit();
      } catch {
        client.disconnect();
      }
    } else {
      client.disconnect();
      // Between reconnect attempts there is no socket: ioredis clears its timer but never emits "end".
      if (client.status === "reconnecting") return;
    }
    await ended;
  }

  #key(key: string): string {
    return `${this.#ns}:${key}`;
  }

  #healthKey(id: string): string {
    return `${this.#ns}:{${id}}:health`;
  }

  #onReady(): void {
    if (this.#down) {
      this.#log("info", this.#everReady ? "Redis connection restored" : "Redis connected", {
        target: this.#target,
      });
    }
    this.#down = false;
    this.#everReady = true;
  }

  #onDown(reason: string): void {
    if (this.#down || this.#closing) return;
    this.#down = true;
    const message = this.#everReady ? "Redis connection lost" : "Redis unreachable";
    this.#log("warn", `${message}; serving local state and retrying`, { target: this.#target, reason });
  }

  /** Resolves once the first connection attempt succeeded or failed (or after a safety timeout). */
  #firstAttempt(timeoutMs: number): Promise<void> {
    const client = this.#client;
    if (client.status === "ready") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        client.off("ready", done).off("error", done).off("close", done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs + 500);
      client.on("ready", done).on("error", done).on("close", done);
    });
  }
}

function createClient(options: RedisStoreOptions): Client {
  const connectTimeout = options.connectTimeoutMs ?? 1000;
  const retry = (attempt: number) => Math.min(200 * attempt, 2000);
  const common: RedisOptions = {
    connectTimeout,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    // A command sent while disconnected fails at once; one in flight when the connection drops fails too.
    maxRetriesPerRequest: 0,
    keepAlive: 10_000,
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(options.tls ? { tls: {} } : {}),
  };
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: retry,
      redisOptions: common,
    };
    return new Cluster([...options.clusterNodes], clusterOptions);
  }
  const standalone: RedisOptions = {
    ...common,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    retryStrategy: retry,
  };
  if (options.url !== undefined) return new Redis(options.url, standalone);
  return new Redis({ ...standalone, host: options.host ?? "127.0.0.1", port: options.port ?? 6379 });
}

/** SCANs one node for `match` and UNLINKs what it finds, page by page; returns how many keys went. */
async function deleteOnNode(
  node: Redis,
  match: string,
  skip: string | null,
  clusterNode: boolean,
): Promise<number> {
  let cursor = "0";
  let count = 0;
  do {
    const [next, found] = await node.scan(cursor, "MATCH", match, "COUNT", SCAN_COUNT);
    cursor = next;
    const keys = skip === null ? found : found.filter((key) => !key.startsWith(skip));
    if (keys.length === 0) continue;
    if (!clusterNode) {
      count += await node.unlink(...keys);
      continue;
    }
    // A cluster node refuses multi-key commands across slots: one UNLINK per key, in one pipeline.
    const pipeline = node.pipeline();
    for (const key of keys) pipeline.unlink(key);
    for (const [error, n] of (await pipeline.exec()) ?? []) {
      if (error) throw error;
      count += n as number;
    }
  } while (cursor !== "0");
  return count;
}

/** SCANs one node for `match` and counts the keys and the bytes of their values, page by page. */
async function usageOnNode(node: Redis, match: string, skip: string | null): Promise<PrefixUsage> {
  let cursor = "0";
  let entries = 0;
  let bytes = 0;
  do {
    const [next, found] = await node.scan(cursor, "MATCH", match, "COUNT", SCAN_COUNT);
    cursor = next;
    const keys = skip === null ? found : found.filter((key) => !key.startsWith(skip));
    if (keys.length === 0) continue;
    const pipeline = node.pipeline();
    for (const key of keys) pipeline.strlen(key);
    for (const [error, length] of (await pipeline.exec()) ?? []) {
      if (error) continue; // not a string (or gone): not counted
      if ((length as number) === 0) continue; // expired between SCAN and STRLEN
      entries++;
      bytes += length as number;
    }
  } while (cursor !== "0");
  return { entries, bytes };
}

function toHealth(reply: (string | null)[]): EndpointHealth {
  const [failures, until, reason] = reply;
  if (failures === null && until === null) return HEALTHY;
  return {
    failures: failures === null ? 0 : Number(failures),
    cooldownUntil: until === null ? 0 : Number(until),
    reason: reason === "failures" || reason === "rate_limit" ? reason : null,
  };
}

function fromScript([failures, until, reason]: HealthReply): EndpointHealth {
  return {
    failures: Number(failures),
    cooldownUntil: Number(until),
    reason: reason === "failures" || reason === "rate_limit" ? reason : null,
  };
}

/** Escapes the glob characters of a SCAN MATCH pattern. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

/** `host:port` (or the cluster seeds) without user or password, for logs. */
function describeTarget(options: RedisStoreOptions): string {
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    return options.clusterNodes.map((node) => stripCredentials(node)).join(",");
  }
  if (options.url !== undefined) return stripCredentials(options.url);
  return `${options.host ?? "127.0.0.1"}:${options.port ?? 6379}`;
}

function stripCredentials(address: string): string {
  try {
    const url = new URL(address.includes("://") ? address : `redis://${address}`);
    return `${url.hostname}:${url.port || "6379"}`;
  } catch {
    return "(unparsable address)";
  }
}
