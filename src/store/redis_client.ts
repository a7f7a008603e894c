/**
 * How the Redis store connects: the options a config resolves to, and the ioredis client they make (standalone,
 * Cluster or Sentinel, plain or TLS). Commands fail fast while Redis is away (no offline queue, no retries, short
 * timeouts) and the client reconnects forever in the background.
 */

import { Cluster, Redis } from "ioredis";
import type { ClusterOptions, RedisOptions } from "ioredis";

export type StoreLogger = (
  level: "info" | "warn" | "error",
  message: string,
  fields?: Record<string, unknown>,
) => void;

/** TLS to Redis: PEM text (not paths), so the caller decides where it comes from. */
export interface RedisTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://...`; wins over host/port. */
  readonly url?: string;
  readonly host?: string;
  readonly port?: number;
  readonly password?: string;
  /** TLS on every connection; `true` for the system's CAs, or PEM material. */
  readonly tls?: boolean | RedisTls;
  /** PEM files to read for TLS (`redis_tls_*_file`); they turn TLS on. */
  readonly tlsFiles?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
  /** Seed nodes (`host:port`) of a Redis Cluster; when given, a cluster client is used. */
  readonly clusterNodes?: readonly string[];
  /** Sentinels (`host:port`) that name the master `sentinelMaster`; when given, a Sentinel client is used. */
  readonly sentinels?: readonly string[];
  readonly sentinelMaster?: string;
  /** Prefix of every key; default "llmproxy". */
  readonly namespace?: string;
  /** This instance's clock (epoch ms; default `Date.now`), onto which cooldowns' time left is added. */
  readonly now?: () => number;
  readonly logger?: StoreLogger;
  /** Give up on one connection attempt after this long; default 1000 ms. */
  readonly connectTimeoutMs?: number;
  /**
   * Reject a command that got no reply this long after it was sent; default 1000 ms. Commands are auto-pipelined,
   * and one issued while an earlier batch awaits its reply is sent after it: against a hung server it can fail
   * up to twice this long after it was issued (`FallbackStore` bounds the wait much lower).
   */
  readonly commandTimeoutMs?: number;
  /** Drop the connection when commands wait and no byte came from Redis for this long; default 5000 ms. */
  readonly socketTimeoutMs?: number;
}

export type Client = Redis | Cluster;

export function createClient(options: RedisStoreOptions): Client {
  const connectTimeout = options.connectTimeoutMs ?? 1000;
  const retry = (attempt: number) => Math.min(200 * attempt, 2000);
  const tls = tlsOptions(options);
  const common: RedisOptions = {
    connectTimeout,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    // A Redis that hangs (SIGSTOP, a VM paused, a partition that drops packets) keeps the socket open: a command
    // that timed out stays queued in the client until a reply, so the queue (and this process's memory) would grow
    // with every command sent for as long as the hang lasts. With no byte from Redis this long while commands
    // wait, the socket is dropped: the queue is emptied, the store serves locally, the client reconnects.
    socketTimeout: options.socketTimeoutMs ?? 5000,
    // A command sent while disconnected fails at once; one in flight when the connection drops fails too.
    maxRetriesPerRequest: 0,
    keepAlive: 10_000,
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(tls ? { tls } : {}),
  };
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: retry,
      // A slot whose master is gone is re-read from the cluster soon, not after the default 5 s.
      slotsRefreshInterval: 2000,
      slotsRefreshTimeout: 500,
      // A command whose node connection closed fails at once instead of being retried for up to 16 rounds:
      // FallbackStore serves it locally and leaves the node alone for a second.
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      redisOptions: common,
    };
    const cluster = new Cluster(options.clusterNodes.map(hostPort), clusterOptions);
    cluster.on("+node", (node: Redis) => guardStreamErrors(node, false));
    return cluster;
  }
  const standalone: RedisOptions = {
    ...common,
    // Connected by `guardStreamErrors`, once it has wrapped the connector.
    lazyConnect: true,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    retryStrategy: retry,
  };
  if (options.sentinels && options.sentinels.length > 0) {
    return guardStreamErrors(
      new Redis({
        ...standalone,
        sentinels: options.sentinels.map(hostPort),
        name: options.sentinelMaster ?? "mymaster",
        sentinelRetryStrategy: retry,
        sentinelCommandTimeout: 500,
        // TLS to the sentinels as well as to the master they name (the same CA and client certificate).
        ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
        // Told by Sentinel that the master moved, the client reconnects to the new one at once.
        failoverDetector: true,
      }),
    );
  }
  if (options.url !== undefined) return guardStreamErrors(new Redis(options.url, standalone));
  return guardStreamErrors(
    new Redis({ ...standalone, host: options.host ?? "127.0.0.1", port: options.port ?? 6379 }),
  );
}

interface Connector {
  connect(...args: unknown[]): Promise<{ on(event: "error", listener: () => void): unknown }>;
}

/**
 * ioredis listens for one `error` on each socket (`once`); a socket that fails twice (a TLS handshake the server
 * refuses, then a write on it: EPIPE) would throw the second error out of the process. Each socket gets a lasting
 * listener that drops errors; ioredis still hears the first one and handles it.
 */
function guardStreamErrors(client: Redis, connectNow = true): Redis {
  const connector = (client as unknown as { connector: Connector }).connector;
  const connect = connector.connect.bind(connector);
  connector.connect = (...args) =>
    connect(...args).then((stream) => {
      stream.on("error", () => {});
      return stream;
    });
  // A first attempt that fails is reported by the "error" and "close" events; the client keeps retrying.
  if (connectNow) client.connect().catch(() => {});
  return client;
}

/** `options` with its `tlsFiles` read into `tls`; a file that cannot be read fails with its key's name. */
export async function readTlsFiles(options: RedisStoreOptions): Promise<RedisStoreOptions> {
  const files = options.tlsFiles;
  if (files === undefined) return options;
  const read = async (path: string | undefined, key: string) => {
    if (path === undefined) return undefined;
    try {
      return await Deno.readTextFile(path);
    } catch (error) {
      throw new Error(`general_settings.${key}: cannot read '${path}': ${(error as Error).message}`);
    }
  };
  const [ca, cert, key] = await Promise.all([
    read(files.ca, "redis_tls_ca_file"),
    read(files.cert, "redis_tls_cert_file"),
    read(files.key, "redis_tls_key_file"),
  ]);
  const pem: RedisTls = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
  return { ...options, tls: pem };
}

function tlsOptions(options: RedisStoreOptions): RedisOptions["tls"] | undefined {
  const wanted = options.tls ?? options.url?.startsWith("rediss://") ?? false;
  if (wanted === false) return undefined;
  if (wanted === true) return {};
  return {
    ...(wanted.ca !== undefined ? { ca: wanted.ca } : {}),
    ...(wanted.cert !== undefined ? { cert: wanted.cert } : {}),
    ...(wanted.key !== undefined ? { key: wanted.key } : {}),
  };
}

function hostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(":");
  return { host: address.slice(0, at).replace(/^\[(.*)\]$/, "$1"), port: Number(address.slice(at + 1)) };
}

/** `host:port` (or the cluster seeds, or the sentinels) without user or password, for logs. */
export function describeTarget(options: RedisStoreOptions): string {
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    return options.clusterNodes.map((node) => stripCredentials(node)).join(",");
  }
  if (options.sentinels && options.sentinels.length > 0) {
    return `sentinel ${options.sentinelMaster ?? "mymaster"} via ${options.sentinels.join(",")}`;
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
