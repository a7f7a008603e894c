/** The proxy configurations the bench runs: one model group on the fake upstream, cache and store as asked. */

export interface BenchConfig {
  readonly upstreamUrl: string;
  readonly cache: boolean;
  /** Absent: the in-memory store. */
  readonly redisUrl?: string;
  /** `cache_params.namespace`, so proxies on one Redis keep apart (their runtime keys among the rest). */
  readonly namespace?: string;
  /** Named client keys configured (`keys:`), the bench client's key (`sk-bench-client`) among them. */
  readonly keys?: number;
  /** The keys have limits (rpm, tpm, max_parallel, budgets) far above what the bench reaches. */
  readonly keyLimits?: boolean;
  /**
   * Two endpoints on the upstream instead of one, chosen by this `routing` (`tiers`: weighted, with priorities 0
   * and 1), so the choice itself is measured.
   */
  readonly routing?: "weighted" | "least_busy" | "latency" | "tiers";
  /** `admin_keys: [sk-bench-admin]`, for keys created at run time (`POST /admin/keys`). */
  readonly adminKey?: boolean;
  /** `usage_stream` on (it needs `redisUrl`). */
  readonly usageStream?: boolean;
  /** The endpoint is an Azure one (`provider: azure`, the v1 layout) on the same upstream. */
  readonly azure?: boolean;
  /**
   * The endpoint is an Azure one that gets Entra ID tokens (client credentials) from the token endpoint at this
   * base URL (`azure_ad.authority_host`) instead of sending an API key.
   */
  readonly entraAuthority?: string;
  /** `redis_cluster_nodes` (instead of `redisUrl`): the seeds of a Redis Cluster. */
  readonly redisClusterNodes?: readonly string[];
}

/** The admin key of configs with `adminKey`. */
export const BENCH_ADMIN_KEY = "sk-bench-admin";

/** Deno flags the proxy runs with, as the tasks and the compiled binary run it (V8's young generation size). */
export { V8_FLAGS } from "../scripts/compile.ts";

/** The model group clients of the bench name. */
export const BENCH_GROUP = "bench";

export function configYaml(config: BenchConfig): string {
  const { routing } = config;
  const endpoint = (name: string, priority: number) => [
    "      - model: gpt-4o-mini",
    "        weight: 1",
    ...(routing === "tiers" ? [`        priority: ${priority}`] : []),
    "        params:",
    `          base_url: ${config.upstreamUrl}`,
    ...(config.entraAuthority
      ? [
        "          azure_ad:",
        "            tenant_id: bench-tenant",
        "            client_id: bench-app",
        "            client_secret: bench-secret",
        `            authority_host: ${config.entraAuthority}`,
      ]
      : ["          api_key: sk-bench-upstream"]),
    `          provider: ${config.azure || config.entraAuthority ? "azure" : "openai"}`,
    ...(routing ? [`          name: ${name}`] : []),
  ];
  return [
    "model_groups:",
    `  - model_group: ${BENCH_GROUP}`,
    ...(routing && routing !== "tiers" ? [`    routing: ${routing}`] : []),
    "    models:",
    ...endpoint("first", 0),
    ...(routing ? endpoint("second", 1) : []),
    "general_settings:",
    "  bind_address: 127.0.0.1",
    `  cache: ${config.cache}`,
    ...(config.redisUrl ? [`  redis_url: ${config.redisUrl}`] : []),
    ...(config.redisClusterNodes
      // Quoted, as in llmproxy.yaml.example: the config reader leaves a plain `IP:port` to js-yaml.
      ? ["  redis_cluster_nodes:", ...config.redisClusterNodes.map((seed) => `    - "${seed}"`)]
      : []),
    // Block style only: a flow mapping is left to js-yaml, whose load adds ~0.9 MiB idle (the Redis rows read it).
    ...(config.namespace ? ["  cache_params:", `    namespace: ${config.namespace}`] : []),
    ...(config.adminKey ? [`  admin_keys: [${BENCH_ADMIN_KEY}]`] : []),
    ...(config.usageStream ? ["  usage_stream:", "    stream_key: bench-usage", "    max_len: 10000"] : []),
    ...keysYaml(config.keys ?? 0, config.keyLimits ?? false),
  ].join("\n") + "\n";
}

/** `count` keys, the last one the bench client's; block style, as the config reader reads without js-yaml. */
function keysYaml(count: number, limits: boolean): string[] {
  if (count === 0) return [];
  const policy = limits
    ? [
      "    rpm: 100000000",
      "    tpm: 1000000000000",
      "    max_parallel: 100000",
      "    tokens_per_day: 1000000000000",
      "    usd_per_month: 1000000",
    ]
    : [];
  return [
    "keys:",
    ...Array.from({ length: count }, (_, i) => [
      `  - name: team-${i}`,
      `    key: ${i === count - 1 ? "sk-bench-client" : `sk-bench-key-${i}`}`,
      ...policy,
    ]).flat(),
  ];
}

/** Writes the YAML to a temporary file and returns its path (the caller removes it). */
export async function writeConfig(config: BenchConfig): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "llmproxy-bench-", suffix: ".yaml" });
  await Deno.writeTextFile(path, configYaml(config));
  return path;
}

/** The non-streamed chat answer the in-process benches' upstream gives (bench/inproc.ts, bench/alloc_child.ts). */
export const CHAT_ANSWER = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1_764_000_000,
  model: "gpt-4o-mini",
  choices: [{
    index: 0,
    message: { role: "assistant", content: "Hello, benchmark! ".repeat(12).trim(), refusal: null },
    logprobs: null,
    finish_reason: "stop",
  }],
  usage: { prompt_tokens: 12, completion_tokens: 60, total_tokens: 72 },
  system_fingerprint: "fp_bench",
});
