/**
 * The features the before/after tools turn on one at a time (`--feature NAME,...` of bench/ab.ts,
 * bench/stream_ab.ts and bench/peak.ts), to read what each costs beside the same build with the bench's config:
 * each listed feature runs every build once more as `name+feature`.
 *
 * - `cache`: the cache on (memory store). `keys`: 100 named client keys in the config; `key-limits`: with limits
 *   the load never reaches (checked in the store on every request).
 * - `redis`: a standalone `redis-server` (started once, shared) as the store; `redis-cache`: on it, the cache on
 *   (each proxy its own namespace); `runtime-key`: on it, admin keys
 *   configured and the client's key created by `POST /admin/keys` after the start; `runtime-key-limits`: that
 *   key with limits; `usage-stream`: on Redis, `usage_stream` on (each answer appended to a Redis Stream).
 * - `otel`: traces exported over OTLP/HTTP to a sink this module serves (it reads and drops every export).
 * - `weighted`, `least_busy`, `latency`, `tiers`: two endpoints on the upstream, chosen by that routing.
 * - `azure`: the endpoint is an Azure one (v1 layout, `api-key` header) on the same upstream.
 * - `info`, `debug`: the log level (the bench's is `error`; `info`, the default, writes one access line a request).
 * - `dashboard`: `/ui/data` asked every 1.5 s while the server runs, as an open dashboard page does.
 * - `responses`: the request is `POST /v1/responses` (new conversations); `continuation`: each one continues a
 *   response made at the start (`previous_response_id`: the affinity lookup, owner and turn checks). Non-streamed
 *   only; compare the two with each other.
 * - `redis-cluster`: a 3-master Redis Cluster (started once, shared) as the store instead of `redis-server`.
 * - `entra`: the endpoint is an Azure one with Entra ID client credentials, its tokens from a token endpoint
 *   this module serves (tests/_support/token_server.ts; one token an hour: asked once at the first request).
 * - `upload`: the request is `POST /v1/files`, a multipart form (`purpose: batch` and a 1 KiB JSONL file, the
 *   group by `x-llmproxy-model-group`); `batch`: `POST /v1/batches` of a file uploaded at the start. Each makes
 *   an object the proxy records (its resource and owner) and the upstream keeps (its books are bounded).
 */

import { dirname } from "node:path";
import { type RedisServer, startRedis } from "../tests/_support/redis.ts";
import { type RedisCluster, startCluster } from "../tests/_support/redis_cluster.ts";
import { startTokenServer, type TokenServer } from "../tests/_support/token_server.ts";
import { BENCH_ADMIN_KEY, BENCH_GROUP, type BenchConfig, V8_FLAGS, writeConfig } from "./proxy_config.ts";
import { type ServerProcess, startServer } from "./server_process.ts";

interface Feature {
  readonly config?: Omit<Partial<BenchConfig>, "upstreamUrl" | "redisUrl">;
  readonly redis?: boolean;
  readonly otel?: boolean;
  readonly logLevel?: string;
  /** The client's key is created at run time, with limits or not. */
  readonly runtimeKey?: "plain" | "limits";
  readonly dashboard?: boolean;
  readonly route?: "responses" | "continuation" | "upload" | "batch";
  readonly cluster?: boolean;
  readonly entra?: boolean;
}

const LIMITS = {
  rpm: 100_000_000,
  tpm: 1_000_000_000_000,
  max_parallel: 100_000,
  tokens_per_day: 1_000_000_000_000,
  usd_per_month: 1_000_000,
};

export const FEATURES: Readonly<Record<string, Feature>> = {
  cache: { config: { cache: true } },
  keys: { config: { keys: 100 } },
  "key-limits": { config: { keys: 100, keyLimits: true } },
  redis: { redis: true },
  "redis-cache": { redis: true, config: { cache: true } },
  "runtime-key": { redis: true, config: { adminKey: true }, runtimeKey: "plain" },
  "runtime-key-limits": { redis: true, config: { adminKey: true }, runtimeKey: "limits" },
  "usage-stream": { redis: true, config: { usageStream: true } },
  otel: { otel: true },
  weighted: { config: { routing: "weighted" } },
  least_busy: { config: { routing: "least_busy" } },
  latency: { config: { routing: "latency" } },
  tiers: { config: { routing: "tiers" } },
  azure: { config: { azure: true } },
  info: { logLevel: "info" },
  debug: { logLevel: "debug" },
  dashboard: { dashboard: true },
  responses: { route: "responses" },
  continuation: { route: "continuation" },
  "redis-cluster": { cluster: true },
  entra: { entra: true },
  upload: { route: "upload" },
  batch: { route: "batch" },
};

/** The names in a `--feature` list (comma-separated, repeatable); exits 2 on an unknown one. */
export function featureNames(lists: string[] | undefined): string[] {
  const names = (lists ?? []).flatMap((list) => list.split(",")).filter((name) => name !== "");
  for (const name of names) {
    if (!(name in FEATURES)) {
      console.error(`unknown feature ${name}; known: ${Object.keys(FEATURES).join(", ")}`);
      Deno.exit(2);
    }
  }
  return names;
}

export interface FeatureServer {
  readonly name: string;
  readonly server: ServerProcess;
  /** The request path and (non-streamed) body this server is measured with, and its headers. */
  readonly path: string;
  body: string;
  readonly headers: Record<string, string>;
  /**
   * Called before each load: a continuation starts from a response made just then (the upstream's book of
   * responses forgets the oldest, and other builds' load on the same upstream fills it).
   */
  prepare?(): Promise<void>;
}

const CLIENT_KEY = "sk-bench-client";

/** Starts builds with a feature on; owns the Redis and the OTLP sink they share. Dispose to stop them all. */
export class FeatureRig implements AsyncDisposable {
  readonly #upstreamUrl: string;
  readonly #servers: ServerProcess[] = [];
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #redis?: Promise<RedisServer>;
  #cluster?: Promise<RedisCluster>;
  #tokens?: TokenServer;
  #sink?: Deno.HttpServer<Deno.NetAddr>;

  constructor(upstreamUrl: string) {
    this.#upstreamUrl = upstreamUrl;
  }

  /**
   * Starts `main` (a bundle or main.ts) as `name` with `feature` on (none: the bench's config), `cache` as the
   * config's unless the feature sets it; `body` is the chat body the caller measures with; `flags`: more for
   * `deno run` (e.g. `--cpu-prof`).
   */
  async start(
    name: string,
    main: string,
    feature: string | undefined,
    options: { cache: boolean; body: string; flags?: string[] },
  ): Promise<FeatureServer> {
    const spec = feature ? FEATURES[feature] : {};
    const redisUrl = spec.redis ? (await (this.#redis ??= startRedis())).url : undefined;
    const redisClusterNodes = spec.cluster ? (await (this.#cluster ??= startCluster())).seeds : undefined;
    const config = await writeConfig({
      upstreamUrl: this.#upstreamUrl,
      cache: options.cache,
      redisUrl,
      redisClusterNodes,
      namespace: redisUrl || redisClusterNodes ? `bench${this.#servers.length}` : undefined,
      entraAuthority: spec.entra ? (this.#tokens ??= startTokenServer()).url : undefined,
      ...spec.config,
    });
    let server: ServerProcess;
    try {
      server = await startServer(name, {
        args: [
          "run",
          "-A",
          ...options.flags ?? [],
          V8_FLAGS,
          main,
          "--config",
          config,
          "--port",
          "0",
          "--log-level",
          spec.logLevel ?? "error",
        ],
        cwd: dirname(main),
        env: spec.otel ? this.#otelEnv() : undefined,
      });
    } finally {
      await Deno.remove(config);
    }
    this.#servers.push(server);
    const headers = { "content-type": "application/json", authorization: `Bearer ${CLIENT_KEY}` };
    if (spec.runtimeKey) headers.authorization = `Bearer ${await createKey(server.url, spec.runtimeKey)}`;
    if (spec.dashboard) this.#poll(server.url);
    if (spec.route === undefined) {
      return { name, server, path: "/v1/chat/completions", body: options.body, headers };
    }
    if (spec.route === "upload" || spec.route === "batch") {
      return await objectRoute(name, server, spec.route, headers);
    }
    const input = { model: BENCH_GROUP, input: "Say hello to the benchmark." };
    const started: FeatureServer = {
      name,
      server,
      path: "/v1/responses",
      body: JSON.stringify(input),
      headers,
    };
    if (spec.route !== "continuation") return started;
    started.prepare = async () => {
      const first = await post(`${server.url}/v1/responses`, headers, JSON.stringify(input));
      started.body = JSON.stringify({ ...input, previous_response_id: first.id });
    };
    await started.prepare();
    return started;
  }

  #otelEnv(): Record<string, string> {
    this.#sink ??= Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
      await request.arrayBuffer();
      return new Response(null, { status: 200 });
    });
    return {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${this.#sink.addr.port}`,
      OTEL_DENO_CONSOLE: "ignore",
    };
  }

  /** `/ui/data` every 1.5 s, as the dashboard page asks (no keys configured: it needs none). */
  #poll(url: string) {
    const ask = () =>
      fetch(`${url}/ui/data`, { signal: AbortSignal.timeout(5000) }).then((answer) => answer.arrayBuffer())
        .catch(() => {});
    ask();
    this.#timers.push(setInterval(ask, 1500));
  }

  async [Symbol.asyncDispose]() {
    for (const timer of this.#timers) clearInterval(timer);
    for (const server of this.#servers.reverse()) await server.stop();
    if (this.#redis) await (await this.#redis)[Symbol.asyncDispose]();
    if (this.#cluster) await (await this.#cluster)[Symbol.asyncDispose]();
    await this.#tokens?.[Symbol.asyncDispose]();
    await this.#sink?.shutdown();
  }
}

async function post(url: string, headers: Record<string, string>, body: string) {
  const answer = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(10_000) });
  const json = await answer.json();
  if (!answer.ok) throw new Error(`${url}: HTTP ${answer.status} ${JSON.stringify(json)}`);
  return json;
}

/** A client key made by `POST /admin/keys`, with limits the load never reaches or none. */
async function createKey(url: string, kind: "plain" | "limits"): Promise<string> {
  const policy = { name: `bench-${crypto.randomUUID().slice(0, 8)}`, ...(kind === "limits" ? LIMITS : {}) };
  const created = await post(
    `${url}/admin/keys`,
    { "content-type": "application/json", authorization: `Bearer ${BENCH_ADMIN_KEY}` },
    JSON.stringify(policy),
  );
  return created.key;
}

const BOUNDARY = "llmproxy-bench-form";
/** A batch input line, repeated to about 1 KiB: what `files.create(purpose="batch")` sends. */
const JSONL = JSON.stringify({
  custom_id: "bench",
  method: "POST",
  url: "/v1/chat/completions",
  body: { model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hello to the benchmark." }] },
}).concat("\n").repeat(7);
const UPLOAD_BODY = [
  `--${BOUNDARY}`,
  'Content-Disposition: form-data; name="purpose"',
  "",
  "batch",
  `--${BOUNDARY}`,
  'Content-Disposition: form-data; name="file"; filename="bench.jsonl"',
  "Content-Type: application/jsonl",
  "",
  JSONL,
  `--${BOUNDARY}--`,
  "",
].join("\r\n");

/** `upload`: each request a `POST /v1/files`; `batch`: each a `POST /v1/batches` of a file uploaded now. */
async function objectRoute(
  name: string,
  server: ServerProcess,
  route: "upload" | "batch",
  client: Record<string, string>,
): Promise<FeatureServer> {
  const group = { authorization: client.authorization, "x-llmproxy-model-group": BENCH_GROUP };
  const headers = { ...group, "content-type": `multipart/form-data; boundary=${BOUNDARY}` };
  if (route === "upload") return { name, server, path: "/v1/files", body: UPLOAD_BODY, headers };
  const started: FeatureServer = {
    name,
    server,
    path: "/v1/batches",
    body: "",
    headers: { ...group, "content-type": "application/json" },
  };
  started.prepare = async () => {
    const file = await post(`${server.url}/v1/files`, headers, UPLOAD_BODY);
    started.body = JSON.stringify({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
  };
  await started.prepare();
  return started;
}
