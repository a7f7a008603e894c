/**
 * The schema (`src/check/`, `schema_parts.ts`) of `llmproxy.yaml`: the Python LLMProxy file format, accepted unchanged, plus the keys of SPEC
 * section 3. Unknown keys are errors, so a typo never passes silently. This describes the file as written (after
 * `os.environ/NAME` substitution); `load.ts` resolves it into the `Config` the rest of the proxy reads.
 *
 * Values substituted from the environment are strings, so numbers and booleans also accept their string forms
 * (`bind_port: os.environ/PORT`), and lists also accept one comma-separated string.
 */

import * as z from "../check/mod.ts";
import { numeric, stringList } from "./schema_parts.ts";
import { LIMIT_KEYS } from "./limits.ts";
import { KEY_FIELDS, KeysSchema, PricesSchema } from "../keys/schema.ts";

const BOOLEAN_WORDS: Record<string, boolean> = {
  true: true,
  yes: true,
  on: true,
  "1": true,
  false: false,
  no: false,
  off: false,
  "0": false,
};

/** `true`/`false`, also as the strings `true|yes|on|1` and `false|no|off|0` (any case). */
const flag = z.preprocess(
  (
    v,
  ) => (typeof v === "string" && v.trim().toLowerCase() in BOOLEAN_WORDS
    ? BOOLEAN_WORDS[v.trim().toLowerCase()]
    : v),
  z.boolean(),
);

/** An optional string where an empty value (an env var set to "") means "not given". */
const optionalText = z.preprocess((v) => (v === "" ? undefined : v), z.optional(z.string()));

const port = numeric(z.number().check(z.int(), z.minimum(0), z.maximum(65535)));
const seconds = numeric(z.number().check(z.minimum(0)));
const positiveSeconds = numeric(z.number().check(z.positive()));
const count = numeric(z.number().check(z.int(), z.minimum(0)));
const positiveCount = numeric(z.number().check(z.int(), z.positive()));

/** A base URL: http(s), with no credentials, query or fragment (extra query parameters go in `default_query`). */
const baseUrl = z.string().check(z.superRefine((s, ctx) => {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    url = new URL("invalid:");
  }
  const problem = url.protocol !== "http:" && url.protocol !== "https:"
    ? "must be an http(s) URL"
    : url.username !== "" || url.password !== ""
    ? "must not contain credentials (use params.api_key or params.headers)"
    : url.search !== "" || url.hash !== ""
    ? "must not contain a query or fragment (use params.default_query)"
    : undefined;
  if (problem) ctx.addIssue({ code: "custom", message: problem });
}));

/** Text that can travel in an HTTP header: no control characters (a pasted newline), nothing beyond Latin-1. */
const HEADER_SAFE = /^[\t\x20-\x7e\x80-\xff]*$/;
const headerValue = z.string().check(
  z.regex(HEADER_SAFE, "must not contain control characters or non-Latin-1 text"),
);

const headerMap = z.record(
  z.string().check(z.minLength(1), z.regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "must be a valid header name")),
  z.preprocess((v) => (typeof v === "number" || typeof v === "boolean" ? String(v) : v), headerValue),
);

/** A mapping that may also be left empty in YAML (`general_settings:` with everything below commented out). */
function emptyAsDefault<T extends z.AnySchema>(inner: T) {
  return z.preprocess((v) => (v === null ? undefined : v), inner);
}

/**
 * `params` of one endpoint. The Python LLMProxy passed `params` to the OpenAI client constructor, so its
 * constructor options are accepted too: `default_headers` and `default_query` are honoured, `organization` and
 * `project` become the `OpenAI-Organization` / `OpenAI-Project` headers, `max_retries` and `websocket_base_url`
 * are accepted and ignored (the proxy's own `num_retries` applies).
 */
/**
 * `params.azure_ad`: Entra ID tokens instead of an API key (Azure endpoints). Client credentials by default;
 * `managed_identity: true` (the instance metadata endpoint) or `workload_identity: true` (the AKS federated token
 * file). Unset ids, secret and token file come from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
 * `AZURE_FEDERATED_TOKEN_FILE` (`routing.ts` resolves them).
 */
export const AzureAdSchema = z.strictObject({
  tenant_id: optionalText,
  client_id: optionalText,
  client_secret: optionalText,
  managed_identity: z.optional(flag),
  workload_identity: z.optional(flag),
  federated_token_file: optionalText,
  /** Default `$AZURE_AUTHORITY_HOST`, else `https://login.microsoftonline.com`. */
  authority_host: z.optional(baseUrl),
  /** Default `http://169.254.169.254/metadata/identity/oauth2/token`. */
  imds_endpoint: z.optional(baseUrl),
  /** Default `https://cognitiveservices.azure.com/.default`. */
  scope: optionalText,
});

export const ParamsSchema = z.strictObject({
  /** Absent: `https://api.openai.com` (the OpenAI client's default). */
  base_url: z.optional(baseUrl),
  /** Absent: `$OPENAI_API_KEY` (openai) or `$AZURE_OPENAI_API_KEY` (azure), like the OpenAI client. */
  api_key: z.optional(headerValue.check(z.minLength(1))),
  api_version: optionalText,
  provider: z.optional(z.oneOf(["azure", "openai"])),
  rpm: z.optional(positiveCount),
  tpm: z.optional(positiveCount),
  timeout: z.optional(positiveSeconds),
  headers: z.optional(headerMap),
  name: z.optional(
    z.string().check(z.regex(
      /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,63}$/,
      "must be 1-64 characters of letters, digits and . _ : @ / - (no spaces or braces)",
    )),
  ),
  // OpenAI client options the Python LLMProxy passed through.
  default_headers: z.optional(headerMap),
  default_query: z.optional(headerMap),
  organization: optionalText,
  project: optionalText,
  max_retries: z.optional(count),
  websocket_base_url: z.optional(z.string()),
  azure_ad: z.optional(AzureAdSchema),
});

export const EndpointSchema = z.strictObject({
  model: z.string().check(z.minLength(1)),
  /** The Python default is 1. */
  weight: z.withDefault(numeric(z.number().check(z.minimum(0))), 1),
  /** Lower is preferred; traffic spills to the next tier only when a tier has no capacity. */
  priority: z.withDefault(numeric(z.number().check(z.int())), 0),
  params: z.withDefault(ParamsSchema, {}),
});

export const ModelGroupSchema = z.strictObject({
  model_group: z.string().check(z.minLength(1)),
  models: z.array(EndpointSchema).check(z.minLength(1)),
  routing: z.withDefault(z.oneOf(["weighted", "least_busy", "latency"]), "weighted"),
  /** Extra names the group answers to; `*` matches any run of characters. */
  aliases: z.withDefault(stringList(), []),
  list_aliases: z.withDefault(flag, false),
  content_filter_fallback: z.withDefault(flag, false),
});

/**
 * `type`, `host`, `port` and `password` come from the Python version, whose cache had its own Redis connection;
 * here the cache uses the proxy's store, so they are used only as the Redis server when `general_settings` names none.
 */
export const CacheParamsSchema = z.strictObject({
  ttl: z.withDefault(positiveCount, 604800),
  namespace: z.withDefault(
    z.string().check(z.regex(/^[^\s{}]+$/, "must be non-empty, without spaces or braces")),
    "llmproxy",
  ),
  /** Default 2 MiB (or the Python `general_settings.max_cache_entry_bytes`); applied by `load.ts`. */
  max_entry_bytes: z.optional(positiveCount),
  max_entries: z.withDefault(positiveCount, 10000),
  max_bytes: z.withDefault(positiveCount, 256 * 1024 * 1024),
  type: z.optional(z.string()),
  host: optionalText,
  port: z.optional(port),
  password: optionalText,
});

/** Each finished request appended to a Redis Stream (`src/usage/`); `caller_headers` is accepted and ignored. */
export const UsageStreamSchema = z.strictObject({
  enabled: z.optional(flag),
  stream_key: z.optional(z.string()),
  max_len: z.optional(count),
  caller_headers: z.optional(stringList()),
});

const HOST_PORT = z.string().check(
  z.regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+):\d{1,5}$/, "must be host:port"),
);

export const GeneralSettingsSchema = z.strictObject({
  bind_address: z.withDefault(z.string().check(z.minLength(1)), "127.0.0.1"),
  bind_port: z.withDefault(port, 5000),
  http_timeout: z.withDefault(positiveSeconds, 300),
  num_retries: z.withDefault(count, 3),
  allowed_fails: z.withDefault(count, 1),
  cooldown_time: z.withDefault(seconds, 60),
  redis_url: optionalText.check(z.refine(
    (s) => s === undefined || /^rediss?:\/\//.test(s),
    "must be a redis:// or rediss:// URL",
  )),
  redis_host: optionalText,
  redis_port: z.optional(port),
  redis_password: optionalText,
  redis_ssl: z.optional(flag),
  redis_cluster_nodes: z.optional(stringList(HOST_PORT)),
  /** Redis Sentinel: the sentinels (`host:port`) and the name of the master they watch. */
  redis_sentinels: z.optional(stringList(HOST_PORT)),
  redis_sentinel_master: optionalText,
  /** Seconds a request waits on Redis at most before local state serves it (default 0.25). */
  redis_max_wait: z.optional(numeric(z.number().check(z.positive(), z.maximum(60)))),
  /** TLS to Redis: PEM files of the CA to trust and of a client certificate and key. */
  redis_tls_ca_file: optionalText,
  redis_tls_cert_file: optionalText,
  redis_tls_key_file: optionalText,
  /** Several processes listen on one port (SO_REUSEPORT, Linux): one process per core. */
  reuse_port: z.withDefault(flag, false),
  cache: z.withDefault(flag, true),
  cache_params: emptyAsDefault(z.withDefault(CacheParamsSchema, CacheParamsSchema.parse({}))),
  response_affinity_ttl: z.withDefault(positiveCount, 21600),
  /** Responses ids this process keeps in its own memory (memory store, or while Redis is away). */
  response_affinity_max_entries: z.withDefault(positiveCount, 100_000),
  /** Files' and batches' records this process keeps in its own memory. */
  object_records_max_entries: z.withDefault(positiveCount, 100_000),
  /** List cursors (where a files or batches list stood, an hour each) this process keeps in its own memory. */
  list_cursors_max_entries: z.withDefault(positiveCount, 10_000),
  responses_failover: z.withDefault(z.oneOf(["replay", "fail"]), "replay"),
  max_wait_for_capacity: z.withDefault(seconds, 2),
  /** Default 10 MiB (or the Python `max_request_body_bytes`); applied by `load.ts`. */
  max_body_bytes: z.optional(positiveCount),
  /** Objects, arrays and object members a JSON request body may hold (400 past it). */
  max_body_items: z.withDefault(positiveCount, 100_000),
  shutdown_timeout: z.withDefault(seconds, 30),
  ...LIMIT_KEYS,
  /** Unset: `http1`, or `fetch` when a forward-proxy variable is set (`resolve.ts`). */
  upstream_client: z.optional(z.oneOf(["http1", "fetch"])),
  api_keys: z.withDefault(stringList(), []),
  /** Seconds between active health probes (a GET of each endpoint's models list); 0 or unset: off. */
  health_probe_interval: z.withDefault(seconds, 0),
  admin_keys: z.withDefault(stringList(), []),
  // Keys of the Python LLMProxy. Honoured where they have a meaning here, accepted and ignored otherwise.
  /** Older name of `max_body_bytes`. */
  max_request_body_bytes: z.optional(positiveCount),
  /** Older name of `cache_params.max_entry_bytes`. */
  max_cache_entry_bytes: z.optional(positiveCount),
  /** Ignored: upstream connections are pooled per origin without a cap (README "Upstream connections"). */
  http_max_connections: z.optional(positiveCount),
  /** Ignored: TLS certificates are always verified. */
  redis_ssl_cert_reqs: optionalText,
  /** `_proxy_cache_hit` in non-streamed JSON answers, as the Python version wrote it. Default false. */
  python_cache_marker: z.withDefault(flag, false),
  /** Finished requests appended to a Redis Stream for billing pipelines. */
  usage_stream: z.optional(UsageStreamSchema),
});

export const ConfigFileSchema = z.strictObject({
  model_groups: z.array(ModelGroupSchema).check(z.minLength(1)),
  general_settings: emptyAsDefault(z.withDefault(GeneralSettingsSchema, GeneralSettingsSchema.parse({}))),
  /** Client keys with names and policies (`src/keys/`). */
  keys: z.optional(KeysSchema),
  /** USD per million tokens, by model. */
  prices: z.optional(PricesSchema),
});

/** The validated file, defaults applied, before resolution. */
export type ConfigFile = z.Output<typeof ConfigFileSchema>;

/** The keys each mapping of the file allows, by the name of the key that holds it (for "did you mean"). */
export const KNOWN_KEYS = {
  top: Object.keys(ConfigFileSchema.shape),
  model_groups: Object.keys(ModelGroupSchema.shape),
  models: Object.keys(EndpointSchema.shape),
  params: Object.keys(ParamsSchema.shape),
  azure_ad: Object.keys(AzureAdSchema.shape),
  general_settings: Object.keys(GeneralSettingsSchema.shape),
  cache_params: Object.keys(CacheParamsSchema.shape),
  usage_stream: Object.keys(UsageStreamSchema.shape),
  keys: KEY_FIELDS,
} as const;
