/**
 * File -> YAML -> `os.environ/NAME` references -> schema -> resolved `Config`, with one readable message per problem:
 * `Cannot load config 'llmproxy.yaml': model_groups[0].models[1].weight must be >= 0, got -1`.
 * Secret values (keys, passwords, Redis URLs) never appear in a message.
 */

import { createHash } from "node:crypto";
import { parseDocument } from "yaml";
import type { z } from "zod";
import type { Config, EndpointConfig, GroupConfig, Provider, RedisSettings, Settings } from "./config.ts";
import { type ConfigFile, ConfigFileSchema, KNOWN_KEYS } from "./schema.ts";

export type EnvLookup = (name: string) => string | undefined;
type Path = readonly PropertyKey[];

export class ConfigError extends Error {
  readonly source: string;
  readonly problems: readonly string[];

  constructor(source: string, problems: readonly string[]) {
    const head = `Cannot load config '${source}':`;
    super(
      problems.length === 1
        ? `${head} ${problems[0]}`
        : `${head} ${problems.length} problems\n  ${problems.join("\n  ")}`,
    );
    this.name = "ConfigError";
    this.source = source;
    this.problems = problems;
  }
}

/** Reads and resolves the config file at `path`; `env` supplies `os.environ/NAME` references. */
export async function loadConfig(path: string, env: EnvLookup): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new ConfigError(path, ["file not found"]);
    throw new ConfigError(path, [`cannot read the file (${error instanceof Error ? error.message : error})`]);
  }
  return parseConfig(text, path, env);
}

/** The pure core of `loadConfig`: `source` names the file in messages. */
export function parseConfig(text: string, source: string, env: EnvLookup): Config {
  const tree = substituteEnv(parseYaml(text, source), [], env, source);
  if (tree === null || tree === undefined) {
    throw new ConfigError(source, ["the file is empty; it needs at least model_groups"]);
  }
  const result = ConfigFileSchema.safeParse(tree);
  if (!result.success) {
    throw new ConfigError(source, result.error.issues.flatMap((issue) => describeIssue(issue, tree)));
  }
  return resolveConfig(result.data, source, env);
}

function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { merge: true });
  // Only the first syntax error: the ones after it are usually its echoes.
  const [error] = doc.errors;
  if (error) {
    const where = error.linePos ? ` at line ${error.linePos[0].line}, column ${error.linePos[0].col}` : "";
    throw new ConfigError(source, [`YAML syntax error${where}: ${error.message.split(" at line ")[0]}`]);
  }
  return doc.toJS();
}

const ENV_REF = /^os\.environ\/(.+)$/;

/** Replaces every string value `os.environ/NAME` in the tree; lists every unset variable at once. */
function substituteEnv(tree: unknown, at: Path, env: EnvLookup, source: string): unknown {
  const missing: string[] = [];
  const walk = (node: unknown, path: Path): unknown => {
    if (typeof node === "string") {
      const name = ENV_REF.exec(node)?.[1];
      if (name === undefined) return node;
      const value = env(name);
      if (value === undefined) missing.push(`${formatPath(path)}: environment variable ${name} is not set`);
      return value;
    }
    if (Array.isArray(node)) return node.map((item, i) => walk(item, [...path, i]));
    if (node !== null && typeof node === "object") {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v, [...path, k])]));
    }
    return node;
  };
  const result = walk(tree, at);
  if (missing.length > 0) throw new ConfigError(source, missing);
  return result;
}

// ---- messages ----

function formatPath(path: Path): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(String(part))) out += out === "" ? String(part) : `.${String(part)}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

const SECRET_SEGMENT = /key|password|secret|token|auth|redis_url/i;

function formatValue(value: unknown, path: Path): string {
  if (path.some((part) => typeof part === "string" && SECRET_SEGMENT.test(part))) return "<redacted>";
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value !== "string") return String(value);
  // URL credentials and query strings may carry secrets too.
  const shown = value.replace(/\/\/[^/@\s]*@/, "//<redacted>@").replace(/\?.*$/, "?<redacted>");
  return JSON.stringify(shown.length > 80 ? `${shown.slice(0, 77)}...` : shown);
}

function valueAt(tree: unknown, path: Path): unknown {
  let node = tree;
  for (const part of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}

const EXPECTED: Record<string, string> = {
  number: "a number",
  int: "an integer",
  string: "a string",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
  record: "a mapping",
};

function describeIssue(issue: z.core.$ZodIssue, tree: unknown): string[] {
  const path = formatPath(issue.path);
  const value = valueAt(tree, issue.path);
  const got = `got ${formatValue(value, issue.path)}`;
  const subject = path === "" ? "the file" : path;
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) =>
        `${formatPath([...issue.path, key])} is not a known key${suggest(key, issue.path)}`
      );
    case "invalid_type":
      if (value === undefined) return [`${subject} is required`];
      return [`${subject} must be ${EXPECTED[issue.expected] ?? issue.expected}, ${got}`];
    case "too_small": {
      const min = Number(issue.minimum);
      if (issue.origin === "array") {
        return [`${subject} must have at least ${min} entr${min === 1 ? "y" : "ies"}`];
      }
      if (issue.origin === "string") return [`${subject} must not be empty`];
      return [`${subject} must be ${issue.inclusive ? ">=" : ">"} ${min}, ${got}`];
    }
    case "too_big":
      return [`${subject} must be ${issue.inclusive ? "<=" : "<"} ${Number(issue.maximum)}, ${got}`];
    case "invalid_value":
      return [`${subject} must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, ${got}`];
    default:
      return [`${subject} ${issue.message}, ${got}`];
  }
}

/** ` (did you mean 'bind_port'?)` when a known key of that mapping is close to the typo. */
function suggest(key: string, at: Path): string {
  const last = at.at(-1);
  const holder = at.length === 0 ? "top" : String(typeof last === "number" ? at.at(-2) : last);
  const known: readonly string[] = KNOWN_KEYS[holder as keyof typeof KNOWN_KEYS] ?? [];
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best ? ` (did you mean '${best}'?)` : "";
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

// ---- resolution ----

const OPENAI_BASE_URL = "https://api.openai.com";
const MiB = 1024 * 1024;
const DATED_API_VERSION = /^\d{4}-\d{2}-\d{2}(-preview)?$/;

function resolveConfig(file: ConfigFile, source: string, env: EnvLookup): Config {
  const problems: string[] = [];
  const gs = file.general_settings;
  const groupSeen = new Map<string, string>();
  const idSeen = new Map<string, string>();
  const implicit: { endpoint: EndpointConfig; path: string }[] = [];

  const groups: GroupConfig[] = file.model_groups.map((group, g) => {
    const groupPath = `model_groups[${g}]`;
    const first = groupSeen.get(group.model_group);
    if (first !== undefined) {
      problems.push(
        `${groupPath}.model_group must be unique, got ${
          JSON.stringify(group.model_group)
        } again (first at ${first})`,
      );
    } else groupSeen.set(group.model_group, groupPath);

    const endpoints = group.models.map((entry, m) => {
      const path = `${groupPath}.models[${m}]`;
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
      const apiKey = p.api_key ?? env(keyVar);
      if (apiKey === undefined || apiKey === "") {
        problems.push(`${path}.params.api_key is required (or set ${keyVar})`);
      }

      const headers: Record<string, string> = {
        ...p.default_headers,
        ...(p.organization ? { "OpenAI-Organization": p.organization } : {}),
        ...(p.project ? { "OpenAI-Project": p.project } : {}),
        ...p.headers,
      };
      const endpoint: EndpointConfig = {
        id: p.name ?? stableId(group.model_group, entry.model, baseUrl, apiVersion),
        group: group.model_group,
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
      };
      if (p.name === undefined) {
        implicit.push({ endpoint, path });
      } else {
        const firstName = idSeen.get(p.name);
        if (firstName !== undefined) {
          problems.push(
            `${path}.params.name must be unique, got ${JSON.stringify(p.name)} again (first at ${firstName})`,
          );
        } else idSeen.set(p.name, path);
      }
      return endpoint;
    });
    return { name: group.model_group, endpoints };
  });

  // Identical (group, model, base URL, api version) entries get -2, -3, ... in file order: still stable.
  for (const { endpoint, path } of implicit) {
    let id = endpoint.id;
    for (let n = 2; idSeen.has(id); n++) id = `${endpoint.id}-${n}`;
    idSeen.set(id, path);
    (endpoint as { id: string }).id = id;
  }

  if (problems.length > 0) throw new ConfigError(source, problems);
  return { source, groups, settings: resolveSettings(gs, env) };
}

/** First 10 hex digits of SHA-256 over (group, model, base URL, api version); never the key. */
function stableId(group: string, model: string, baseUrl: string, apiVersion: string | undefined): string {
  const input = JSON.stringify([group, model, baseUrl, apiVersion ?? null]);
  return createHash("sha256").update(input).digest("hex").slice(0, 10);
}

/**
 * What only fetch honours: a forward proxy for HTTP, and Deno's OpenTelemetry (which traces fetch calls, not the
 * proxy's own client). When one is asked for and `upstream_client` is not set, upstream calls use fetch.
 */
const PROXY_VARIABLES = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

function wantsFetch(env: EnvLookup): boolean {
  const otel = env("OTEL_DENO");
  return PROXY_VARIABLES.some((name) => env(name)) || otel === "true" || otel === "1";
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
    responsesFailover: gs.responses_failover,
    maxWaitForCapacityMs: Math.round(gs.max_wait_for_capacity * 1000),
    maxBodyBytes: gs.max_body_bytes ?? gs.max_request_body_bytes ?? 10 * MiB,
    shutdownTimeoutMs: Math.round(gs.shutdown_timeout * 1000),
    upstreamClient: gs.upstream_client ?? (wantsFetch(env) ? "fetch" : "http1"),
    apiKeys: gs.api_keys,
    adminKeys: gs.admin_keys,
  };
}

/** Redis from `redis_url` / `redis_host` / `redis_cluster_nodes`, else the Python `cache_params` host; else none. */
function resolveRedis(gs: ConfigFile["general_settings"]): { redis?: RedisSettings } {
  const cp = gs.cache_params;
  const nodes = gs.redis_cluster_nodes ?? [];
  const own = gs.redis_url !== undefined || gs.redis_host !== undefined || nodes.length > 0;
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
  };
  return { redis };
}
