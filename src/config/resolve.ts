/**
 * The validated file -> the resolved `Config` the rest of the proxy reads: defaults that depend on other keys,
 * the endpoint's provider, base URL, api version and id, the Redis server. Problems only visible across entries
 * (duplicate names, a missing key) are collected into one `ConfigError`.
 */

import type { Config, EndpointConfig, GroupConfig, Provider, RedisSettings, Settings } from "./config.ts";
import { ConfigError } from "./error.ts";
import { formatPath, type Path, type Problem, problemAt } from "./messages.ts";
import { ignoredKeys } from "./legacy.ts";
import { resolveLimits } from "./limits.ts";
import { checkAliases, groupRouting, resolveAzureAd } from "./routing.ts";
import { resolveKeys, unmatchedModels } from "../keys/config.ts";
import type { ConfigFile } from "./schema.ts";
import { sha256Hex } from "../util/sha256.ts";

export type EnvLookup = (name: string) => string | undefined;

type EndpointEntry = ConfigFile["model_groups"][number]["models"][number];

const OPENAI_BASE_URL = "https://api.openai.com";
const MiB = 1024 * 1024;
const DATED_API_VERSION = /^\d{4}-\d{2}-\d{2}(-preview)?$/;

export function resolveConfig(file: ConfigFile, source: string, env: EnvLookup): Config {
  const problems: Problem[] = [];
  const groupSeen = new Map<string, Path>();
  const idSeen = new Map<string, Path>();
  const implicit: { endpoint: EndpointConfig; path: Path }[] = [];

  const groups: GroupConfig[] = file.model_groups.map((group, g) => {
    const groupPath = ["model_groups", g];
    const first = groupSeen.get(group.model_group);
    if (first !== undefined) {
      problems.push(
        problemAt(
          [...groupPath, "model_group"],
          ` must be unique, got ${JSON.stringify(group.model_group)} again (first at ${formatPath(first)})`,
        ),
      );
    } else groupSeen.set(group.model_group, groupPath);

    const endpoints = group.models.map((entry, m) => {
      const path = [...groupPath, "models", m];
      const endpoint = resolveEndpoint(entry, group.model_group, path, file.general_settings, env, problems);
      const name = entry.params.name;
      if (name === undefined) {
        implicit.push({ endpoint, path });
      } else {
        const firstName = idSeen.get(name);
        if (firstName !== undefined) {
          problems.push(
            problemAt(
              [...path, "params", "name"],
              ` must be unique, got ${JSON.stringify(name)} again (first at ${formatPath(firstName)})`,
            ),
          );
        } else idSeen.set(name, path);
      }
      return endpoint;
    });
    return { name: group.model_group, endpoints, ...groupRouting(group) };
  });
  checkAliases(groups, problems);

  // Identical (group, model, base URL, api version) entries get -2, -3, ... in file order: still stable.
  for (const { endpoint, path } of implicit) {
    let id = endpoint.id;
    for (let n = 2; idSeen.has(id); n++) id = `${endpoint.id}-${n}`;
    idSeen.set(id, path);
    (endpoint as { id: string }).id = id;
  }

  const keys = resolveKeys(file.keys, file.prices, file.general_settings.usage_stream);
  problems.push(...keys.problems, ...unmatchedModels(file.keys, groups.map((group) => group.name)));
  if (problems.length > 0) throw new ConfigError(source, problems);
  const settings = resolveSettings(file.general_settings, env);
  // A usage stream is a Redis Stream: with no Redis it would write nothing, so it is not turned on (and said so).
  const { usageStream, ...keysWithoutStream } = keys.keys;
  const streamless = usageStream !== undefined && settings.redis === undefined;
  return {
    source,
    groups,
    settings,
    ignored: [...ignoredKeys(file), ...(streamless ? [STREAM_WITHOUT_REDIS] : [])],
    keys: streamless ? keysWithoutStream : keys.keys,
  };
}

const STREAM_WITHOUT_REDIS = {
  key: "general_settings.usage_stream",
  reason:
    "the usage stream is a Redis Stream, and no Redis is configured: nothing is written or counted for it",
};

function resolveEndpoint(
  entry: EndpointEntry,
  group: string,
  path: Path,
  gs: ConfigFile["general_settings"],
  env: EnvLookup,
  problems: Problem[],
): EndpointConfig {
  const p = entry.params;
  const url = new URL(p.base_url ?? OPENAI_BASE_URL);
  const provider: Provider = p.provider ?? (url.hostname.endsWith(".azure.com") ? "azure" : "openai");
  let pathname = url.pathname.replace(/\/+$/, "");
  // Azure: the resource root; `/openai` and `/openai/v1` (as the OpenAI SDK wants them) are added per request.
  if (provider === "azure") pathname = pathname.replace(/\/openai(\/v1)?$/i, "");
  const baseUrl = `${url.protocol}//${url.host}${pathname}`;

  const query = { ...p.default_query };
  let apiVersion = p.api_version;
  if (apiVersion === undefined && DATED_API_VERSION.test(query["api-version"] ?? "")) {
    apiVersion = query["api-version"];
    delete query["api-version"];
  }

  const keyVar = provider === "azure" ? "AZURE_OPENAI_API_KEY" : "OPENAI_API_KEY";
  const azureAd = resolveAzureAd(p.azure_ad, provider, path, env, problems);
  const apiKey = p.api_key ?? (azureAd ? "" : env(keyVar));
  if (!azureAd && (apiKey === undefined || apiKey === "")) {
    problems.push(problemAt([...path, "params", "api_key"], ` is required (or set ${keyVar})`));
  }

  const headers: Record<string, string> = {
    ...p.default_headers,
    ...(p.organization ? { "OpenAI-Organization": p.organization } : {}),
    ...(p.project ? { "OpenAI-Project": p.project } : {}),
    ...p.headers,
  };
  return {
    id: p.name ?? stableId(group, entry.model, baseUrl, apiVersion),
    group,
    model: entry.model,
    weight: entry.weight,
    provider,
    baseUrl,
    apiKey: apiKey ?? "",
    ...(apiVersion !== undefined ? { apiVersion } : {}),
    ...(p.rpm !== undefined ? { rpm: p.rpm } : {}),
    ...(p.tpm !== undefined ? { tpm: p.tpm } : {}),
    timeoutMs: Math.round((p.timeout ?? gs.http_timeout) * 1000),
    headers,
    ...(Object.keys(query).length > 0 ? { query } : {}),
    priority: entry.priority,
    ...(azureAd ? { azureAd } : {}),
  };
}

/** First 10 hex digits of SHA-256 over (group, model, base URL, api version); never the key. */
function stableId(group: string, model: string, baseUrl: string, apiVersion: string | undefined): string {
  const input = JSON.stringify([group, model, baseUrl, apiVersion ?? null]);
  return sha256Hex(input).slice(0, 10);
}

/**
 * What only fetch honours: a forward proxy for HTTP. When one is set and `upstream_client` is not, upstream calls
 * use fetch. (OpenTelemetry no longer needs fetch: the proxy traces its own client's attempts.)
 */
const PROXY_VARIABLES = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

function wantsFetch(env: EnvLookup): boolean {
  return PROXY_VARIABLES.some((name) => env(name));
}

function resolveSettings(gs: ConfigFile["general_settings"], env: EnvLookup): Settings {
  const cp = gs.cache_params;
  return {
    host: gs.bind_address,
    port: gs.bind_port,
    httpTimeoutMs: Math.round(gs.http_timeout * 1000),
    numRetries: gs.num_retries,
    // 0 would mean "cool down before the first failure"; it behaves like 1.
    allowedFails: Math.max(1, gs.allowed_fails),
    cooldownMs: Math.round(gs.cooldown_time * 1000),
    ...resolveRedis(gs),
    cache: gs.cache,
    cacheTtlSeconds: cp.ttl,
    namespace: cp.namespace,
    cacheMaxEntryBytes: cp.max_entry_bytes ?? gs.max_cache_entry_bytes ?? 2 * MiB,
    cacheMaxEntries: cp.max_entries,
    cacheMaxBytes: cp.max_bytes,
    responseAffinityTtlSeconds: gs.response_affinity_ttl,
    responseAffinityMaxEntries: gs.response_affinity_max_entries,
    objectRecordsMaxEntries: gs.object_records_max_entries,
    listCursorsMaxEntries: gs.list_cursors_max_entries,
    responsesFailover: gs.responses_failover,
    maxWaitForCapacityMs: Math.round(gs.max_wait_for_capacity * 1000),
    maxBodyBytes: gs.max_body_bytes ?? gs.max_request_body_bytes ?? 10 * MiB,
    maxBodyItems: gs.max_body_items,
    limits: resolveLimits(gs, gs.max_body_bytes ?? gs.max_request_body_bytes ?? 10 * MiB),
    shutdownTimeoutMs: Math.round(gs.shutdown_timeout * 1000),
    upstreamClient: gs.upstream_client ?? (wantsFetch(env) ? "fetch" : "http1"),
    apiKeys: gs.api_keys,
    reusePort: gs.reuse_port,
    healthProbeIntervalMs: Math.round(gs.health_probe_interval * 1000),
    adminKeys: gs.admin_keys,
    pythonCacheMarker: gs.python_cache_marker,
  };
}

function tlsFiles(gs: ConfigFile["general_settings"]): Pick<RedisSettings, "tlsFiles"> {
  const { redis_tls_ca_file: ca, redis_tls_cert_file: cert, redis_tls_key_file: key } = gs;
  if (ca === undefined && cert === undefined && key === undefined) return {};
  return { tlsFiles: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } };
}

/** Redis from `redis_url` / `redis_host` / `redis_cluster_nodes`, else the Python `cache_params` host; else none. */
function resolveRedis(gs: ConfigFile["general_settings"]): { redis?: RedisSettings } {
  const cp = gs.cache_params;
  const nodes = gs.redis_cluster_nodes ?? [];
  const sentinels = gs.redis_sentinels ?? [];
  const own = gs.redis_url !== undefined || gs.redis_host !== undefined || nodes.length > 0 ||
    sentinels.length > 0;
  if (!own && cp.host === undefined) return {};
  const host = own ? gs.redis_host : cp.host;
  const port = own ? gs.redis_port : cp.port;
  const password = own ? gs.redis_password : cp.password;
  const redis: RedisSettings = {
    ...(gs.redis_url !== undefined ? { url: gs.redis_url } : {}),
    ...(host !== undefined ? { host } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(password !== undefined ? { password } : {}),
    tls: gs.redis_ssl ?? gs.redis_url?.startsWith("rediss://") ?? false,
    ...(nodes.length > 0 ? { clusterNodes: nodes } : {}),
    ...(sentinels.length > 0 ? { sentinels, sentinelMaster: gs.redis_sentinel_master ?? "mymaster" } : {}),
    ...tlsFiles(gs),
    ...(gs.redis_max_wait !== undefined ? { maxWaitMs: Math.round(gs.redis_max_wait * 1000) } : {}),
  };
  return { redis };
}
