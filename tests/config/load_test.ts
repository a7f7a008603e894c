import assert from "node:assert/strict";
import { ConfigError, loadConfig, MAX_CONFIG_VALUES } from "../../src/config/load.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { KNOWN_KEYS } from "../../src/config/schema.ts";
import { parseYaml } from "../../src/config/yaml.ts";
import { PriceSchema } from "../../src/keys/schema.ts";
import { test } from "../_support/test.ts";

const noEnv = () => undefined;
const envOf = (vars: Record<string, string>) => (name: string): string | undefined => vars[name];

/** The message of the ConfigError that parsing `text` throws. */
function errorOf(text: string, env: (name: string) => string | undefined = noEnv): string {
  try {
    parseConfig(text, "llmproxy.yaml", env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error.message;
  }
  assert.fail("expected the config to be rejected");
}

const MINIMAL = `
model_groups:
  - model_group: gpt-4o-mini
    models:
      - model: gpt-4o-mini
        params: { base_url: "https://api.openai.com/", api_key: sk-test }
`;

/** A file as the Python LLMProxy documented it, including its env references and cache_params. */
const PYTHON_FILE = `
model_groups:
  ### o4-mini
  - model_group: o4-mini
    models:
      - model: o4-mini
        weight: 1
        params:
          api_key: os.environ/AZURE_OPENAI_API_KEY_O4_MINI_1
          base_url: os.environ/AZURE_OPENAI_ENDPOINT_O4_MINI_1
          default_query:
            api-version: "preview"
      - model: o4-mini
        weight: 1
        params:
          api_key: os.environ/AZURE_OPENAI_API_KEY_O4_MINI_2
          base_url: os.environ/AZURE_OPENAI_ENDPOINT_O4_MINI_2
          api_version: "2024-02-15-preview"
      # OpenAI (fallback with weight 0)
      - model: o4-mini
        weight: 0
        params:
          api_key: os.environ/OPENAI_API_KEY

general_settings:
  bind_address: localhost
  bind_port: 4000
  http_timeout: 300 # seconds
  http_max_connections: 100 # max concurrent upstream connections per worker
  max_request_body_bytes: 33554432 # 32 MiB max inbound API request body
  max_cache_entry_bytes: 67108864 # 64 MiB max Redis cache entry
  num_retries: 3 # number of retries for each request
  allowed_fails: 1
  cooldown_time: 60
  redis_host: os.environ/REDIS_HOST
  redis_port: os.environ/REDIS_PORT
  redis_password: os.environ/REDIS_PASSWORD
  redis_ssl: os.environ/REDIS_SSL  # Set to 'true' for SSL connections
  redis_ssl_cert_reqs: os.environ/REDIS_SSL_CERT_REQS  # Options: "required", "optional", "none"
  cache: True # enable cache
  cache_params:
    type: redis
    ttl: 604800 # 7 days
    namespace: "litellm.cache"
    host: os.environ/REDIS_HOST
    port: os.environ/REDIS_PORT
    password: os.environ/REDIS_PASSWORD
  response_affinity_ttl: 21600 # 6 hours
  usage_stream:
    enabled: True
    stream_key: "llmproxy-telemetry:usage"
    max_len: 100000
    caller_headers:
      - x-coral-agent
`;

const PYTHON_ENV = envOf({
  AZURE_OPENAI_API_KEY_O4_MINI_1: "azure-key-1",
  AZURE_OPENAI_ENDPOINT_O4_MINI_1: "https://east.openai.azure.com/openai/v1/",
  AZURE_OPENAI_API_KEY_O4_MINI_2: "azure-key-2",
  AZURE_OPENAI_ENDPOINT_O4_MINI_2: "https://west.openai.azure.com/",
  OPENAI_API_KEY: "sk-openai",
  REDIS_HOST: "redis.internal",
  REDIS_PORT: "6380",
  REDIS_PASSWORD: "s3cret",
  REDIS_SSL: "true",
  REDIS_SSL_CERT_REQS: "required",
});

test("a Python LLMProxy file loads unchanged", () => {
  const config = parseConfig(PYTHON_FILE, "llmproxy.yaml", PYTHON_ENV);
  assert.equal(config.source, "llmproxy.yaml");
  assert.equal(config.groups.length, 1);
  const [v1, classic, fallback] = config.groups[0].endpoints;
  assert.equal(config.groups[0].name, "o4-mini");

  assert.equal(v1.provider, "azure");
  assert.equal(v1.baseUrl, "https://east.openai.azure.com");
  assert.equal(v1.apiKey, "azure-key-1");
  assert.equal(v1.apiVersion, undefined);
  assert.deepEqual(v1.query, { "api-version": "preview" });
  assert.equal(v1.weight, 1);

  assert.equal(classic.apiVersion, "2024-02-15-preview");
  assert.equal(classic.query, undefined);
  assert.equal(classic.baseUrl, "https://west.openai.azure.com");

  assert.equal(fallback.provider, "openai");
  assert.equal(fallback.baseUrl, "https://api.openai.com");
  assert.equal(fallback.apiKey, "sk-openai");
  assert.equal(fallback.weight, 0);

  const s = config.settings;
  assert.equal(s.host, "localhost");
  assert.equal(s.port, 4000);
  assert.deepEqual(s.redis, { host: "redis.internal", port: 6380, password: "s3cret", tls: true });
  assert.equal(s.maxBodyBytes, 32 * 1024 * 1024);
  assert.equal(s.cacheMaxEntryBytes, 64 * 1024 * 1024);
  assert.equal(s.cache, true);
  assert.equal(s.cacheTtlSeconds, 604800);
  assert.equal(s.namespace, "litellm.cache");
});

test("defaults fill every setting a minimal file leaves out", () => {
  const config = parseConfig(MINIMAL, "llmproxy.yaml", noEnv);
  const MiB = 1024 * 1024;
  assert.deepEqual(config.settings, {
    host: "127.0.0.1",
    port: 5000,
    httpTimeoutMs: 300_000,
    numRetries: 3,
    allowedFails: 1,
    cooldownMs: 60_000,
    cache: true,
    cacheTtlSeconds: 604800,
    namespace: "llmproxy",
    cacheMaxEntryBytes: 2 * MiB,
    cacheMaxEntries: 10000,
    cacheMaxBytes: 256 * MiB,
    responseAffinityTtlSeconds: 21600,
    responseAffinityMaxEntries: 100_000,
    objectRecordsMaxEntries: 100_000,
    listCursorsMaxEntries: 10_000,
    responsesFailover: "replay",
    maxWaitForCapacityMs: 2000,
    maxBodyBytes: 10 * MiB,
    maxBodyItems: 100_000,
    upstreamClient: "http1",
    reusePort: false,
    shutdownTimeoutMs: 30_000,
    limits: {
      maxConnections: undefined,
      keepaliveTimeoutMs: 30_000,
      headerTimeoutMs: 10_000,
      bodyTimeoutMs: 60_000,
      maxInflightBodyBytes: 40 * MiB,
      maxResponseBytes: 64 * MiB,
      connectTimeoutMs: 10_000,
    },
    apiKeys: [],
    healthProbeIntervalMs: 0,
    adminKeys: [],
    pythonCacheMarker: false,
  });
  const [endpoint] = config.groups[0].endpoints;
  assert.deepEqual({ ...endpoint, id: "-" }, {
    id: "-",
    group: "gpt-4o-mini",
    model: "gpt-4o-mini",
    weight: 1,
    provider: "openai",
    baseUrl: "https://api.openai.com",
    apiKey: "sk-test",
    timeoutMs: 300_000,
    headers: {},
    priority: 0,
  });
});

test("empty general_settings/cache_params mean defaults; YAML anchors and merge keys work", () => {
  const config = parseConfig(
    `
model_groups:
  - model_group: g
    models:
      - { model: m, params: &azure { base_url: "https://res.openai.azure.com", api_key: k } }
      - { model: m, params: { <<: *azure, name: b, timeout: 5 } }
general_settings:
  cache_params:
`,
    "x",
    noEnv,
  );
  const [a, b] = config.groups[0].endpoints;
  assert.equal(a.provider, "azure");
  assert.equal(b.baseUrl, a.baseUrl);
  assert.equal(b.apiKey, "k");
  assert.equal(b.timeoutMs, 5000);
  assert.equal(config.settings.namespace, "llmproxy");
  assert.equal(parseConfig(MINIMAL + "general_settings:\n", "x", noEnv).settings.port, 5000);
  assert.match(
    errorOf(MINIMAL.replace("api_key: sk-test", "api_key: k, headers: { x-a: }")),
    /params\.headers\.x-a must be a string, got nothing/,
  );
});

test("every option of an endpoint resolves", () => {
  const config = parseConfig(
    `
model_groups:
  - model_group: g
    models:
      - model: m
        weight: 2.5
        params:
          base_url: http://127.0.0.1:8080/v1
          api_key: k
          api_version: "2024-10-21"
          provider: azure
          rpm: 600
          tpm: "150000"
          timeout: 1.5
          name: east-1
          headers: { x-a: "1", x-b: 2 }
          default_headers: { x-a: "0", x-c: yes }
          organization: org-1
          project: proj-1
          max_retries: 2
general_settings: { http_timeout: 10, allowed_fails: 0 }
`,
    "llmproxy.yaml",
    noEnv,
  );
  assert.deepEqual(config.groups[0].endpoints[0], {
    id: "east-1",
    group: "g",
    model: "m",
    weight: 2.5,
    provider: "azure",
    baseUrl: "http://127.0.0.1:8080/v1",
    apiKey: "k",
    apiVersion: "2024-10-21",
    rpm: 600,
    tpm: 150000,
    timeoutMs: 1500,
    headers: {
      "x-a": "1",
      "x-b": "2",
      "x-c": "yes",
      "OpenAI-Organization": "org-1",
      "OpenAI-Project": "proj-1",
    },
    priority: 0,
  });
  assert.equal(config.settings.allowedFails, 1);
});

test("provider: azure for *.azure.com hosts, else openai, unless given", () => {
  const providerOf = (baseUrl: string, extra = "") =>
    parseConfig(
      `model_groups: [{model_group: g, models: [{model: m, params: {base_url: "${baseUrl}", api_key: k${extra}}}]}]`,
      "x.yaml",
      noEnv,
    ).groups[0].endpoints[0].provider;
  assert.equal(providerOf("https://res.openai.azure.com"), "azure");
  assert.equal(providerOf("https://res.cognitiveservices.azure.com/"), "azure");
  assert.equal(providerOf("https://res.services.ai.azure.com/openai/v1"), "azure");
  assert.equal(providerOf("https://api.openai.com/v1"), "openai");
  assert.equal(providerOf("http://127.0.0.1:9000"), "openai");
  assert.equal(providerOf("https://azure.com.evil.example"), "openai");
  assert.equal(providerOf("https://gateway.example.com", ", provider: azure"), "azure");
  assert.equal(providerOf("https://res.openai.azure.com", ", provider: openai"), "openai");
});

test("endpoint ids are stable, depend on group/model/base_url/api_version, never the key", () => {
  const idOf = (params: string, group = "g") =>
    parseConfig(
      `model_groups: [{model_group: ${group}, models: [{model: m, params: {${params}}}]}]`,
      "x",
      noEnv,
    )
      .groups[0].endpoints[0].id;
  const base = idOf("base_url: https://a.example.com, api_key: k1");
  assert.match(base, /^[0-9a-f]{10}$/);
  assert.equal(idOf("base_url: https://a.example.com, api_key: k1"), base);
  assert.equal(
    idOf("base_url: https://a.example.com/, api_key: k1"),
    base,
    "a trailing slash changes nothing",
  );
  assert.equal(
    idOf("base_url: https://a.example.com, api_key: other-key"),
    base,
    "the key is not part of the id",
  );
  assert.notEqual(idOf("base_url: https://b.example.com, api_key: k1"), base);
  assert.notEqual(idOf("base_url: https://a.example.com, api_key: k1", "h"), base);
  assert.notEqual(idOf("base_url: https://a.example.com, api_key: k1, api_version: '2024-10-21'"), base);
  assert.equal(idOf("base_url: https://a.example.com, api_key: k1, name: east"), "east");
});

test("identical endpoints get distinct ids in file order", () => {
  const config = parseConfig(
    `model_groups: [{model_group: g, models: [
      {model: m, params: {base_url: https://a.example.com, api_key: k1}},
      {model: m, params: {base_url: https://a.example.com, api_key: k2}}]}]`,
    "x",
    noEnv,
  );
  const [a, b] = config.groups[0].endpoints;
  assert.equal(b.id, `${a.id}-2`);
});

test("unknown keys are errors naming their path", () => {
  assert.equal(
    errorOf(MINIMAL + "general_setting: {}\n"),
    "Cannot load config 'llmproxy.yaml': general_setting is not a known key (did you mean 'general_settings'?) (line 7)",
  );
  assert.equal(
    errorOf(MINIMAL + "general_settings: { bind_prot: 5000 }\n"),
    "Cannot load config 'llmproxy.yaml': general_settings.bind_prot is not a known key (did you mean 'bind_port'?) (line 7)",
  );
  assert.equal(
    errorOf(MINIMAL.replace("api_key: sk-test", "api_key: sk-test, base_ur: x")),
    "Cannot load config 'llmproxy.yaml': model_groups[0].models[0].params.base_ur is not a known key " +
      "(did you mean 'base_url'?) (line 6)",
  );
  assert.match(
    errorOf(MINIMAL + "general_settings: { cache_params: { ttl: 1, zzz: 2 } }\n"),
    /general_settings\.cache_params\.zzz is not a known key \(line 7\)$/,
  );
});

test("a negative weight names the path and the value", () => {
  const text = `
model_groups:
  - model_group: g
    models:
      - { model: m, weight: 1, params: { base_url: "https://a.example.com", api_key: k } }
      - { model: m, weight: -1, params: { base_url: "https://b.example.com", api_key: k } }
`;
  assert.equal(
    errorOf(text),
    "Cannot load config 'llmproxy.yaml': model_groups[0].models[1].weight must be >= 0, got -1 (line 6)",
  );
});

test("several problems are listed one per line", () => {
  const message = errorOf(`
model_groups:
  - model_group: g
    models: []
general_settings: { responses_failover: retry, num_retries: 1.5, cache: maybe }
`);
  assert.equal(
    message,
    [
      "Cannot load config 'llmproxy.yaml': 4 problems",
      "  model_groups[0].models must have at least 1 entry (line 4)",
      "  general_settings.num_retries must be an integer, got 1.5 (line 5)",
      '  general_settings.cache must be true or false, got "maybe" (line 5)',
      '  general_settings.responses_failover must be one of "replay", "fail", got "retry" (line 5)',
    ].join("\n"),
  );
});

test("duplicate group names and endpoint names are errors", () => {
  const message = errorOf(`
model_groups:
  - model_group: g
    models: [{ model: m, params: { base_url: "https://a.example.com", api_key: k, name: east } }]
  - model_group: g
    models: [{ model: m, params: { base_url: "https://b.example.com", api_key: k, name: east } }]
`);
  assert.match(
    message,
    /model_groups\[1\]\.model_group must be unique, got "g" again \(first at model_groups\[0\]\)/,
  );
  assert.match(
    message,
    /model_groups\[1\]\.models\[0\]\.params\.name must be unique, got "east" again \(first at model_groups\[0\]\.models\[0\]\)/,
  );
});

test("base_url must be a plain http(s) URL", () => {
  const withBase = (url: string) => errorOf(MINIMAL.replace('"https://api.openai.com/"', `"${url}"`));
  assert.match(
    withBase("ftp://x.example.com"),
    /params\.base_url must be an http\(s\) URL, got "ftp:\/\/x\.example\.com"/,
  );
  assert.match(withBase("not a url"), /params\.base_url must be an http\(s\) URL, got "not a url"/);
  assert.match(withBase("https://x.example.com?a=1"), /must not contain a query/);
});

test("an unset environment variable names the path and the variable", () => {
  const text = MINIMAL.replace("api_key: sk-test", "api_key: os.environ/MY_KEY") +
    "general_settings: { bind_port: os.environ/PORT }\n";
  assert.equal(
    errorOf(text),
    [
      "Cannot load config 'llmproxy.yaml': 2 problems",
      "  model_groups[0].models[0].params.api_key: environment variable MY_KEY is not set (line 6)",
      "  general_settings.bind_port: environment variable PORT is not set (line 7)",
    ].join("\n"),
  );
});

test("numeric and boolean strings from the environment coerce", () => {
  const text = MINIMAL + `
general_settings:
  bind_port: os.environ/PORT
  http_timeout: os.environ/TIMEOUT
  cache: os.environ/CACHE
  redis_url: os.environ/REDIS_URL
  redis_cluster_nodes: os.environ/NODES
  api_keys: os.environ/KEYS
`;
  const config = parseConfig(
    text,
    "x",
    envOf({
      PORT: "8080",
      TIMEOUT: "12.5",
      CACHE: "false",
      REDIS_URL: "rediss://:pw@r.example.com:6380",
      NODES: "10.0.0.1:6379, 10.0.0.2:6379",
      KEYS: "a,b",
    }),
  );
  assert.equal(config.settings.port, 8080);
  assert.equal(config.settings.httpTimeoutMs, 12_500);
  assert.equal(config.groups[0].endpoints[0].timeoutMs, 12_500);
  assert.equal(config.settings.cache, false);
  assert.deepEqual(config.settings.redis, {
    url: "rediss://:pw@r.example.com:6380",
    tls: true,
    clusterNodes: ["10.0.0.1:6379", "10.0.0.2:6379"],
  });
  assert.deepEqual(config.settings.apiKeys, ["a", "b"]);
  assert.equal(
    errorOf(MINIMAL + "general_settings: { bind_port: os.environ/PORT }\n", envOf({ PORT: "abc" })),
    "Cannot load config 'llmproxy.yaml': general_settings.bind_port must be a number, got \"abc\" (line 7)",
  );
});

test("redis settings are absent unless configured; empty env values mean unset", () => {
  assert.equal(parseConfig(MINIMAL, "x", noEnv).settings.redis, undefined);
  const config = parseConfig(
    MINIMAL + "general_settings: { redis_host: os.environ/H, redis_password: os.environ/P }\n",
    "x",
    envOf({ H: "", P: "" }),
  );
  assert.equal(config.settings.redis, undefined);
});

test("a missing api_key falls back to OPENAI_API_KEY like the OpenAI client, else is an error", () => {
  const text = "model_groups: [{model_group: g, models: [{model: m}]}]";
  assert.equal(
    parseConfig(text, "x", envOf({ OPENAI_API_KEY: "sk-env" })).groups[0].endpoints[0].apiKey,
    "sk-env",
  );
  assert.equal(
    errorOf(text),
    "Cannot load config 'llmproxy.yaml': model_groups[0].models[0].params.api_key is required (or set OPENAI_API_KEY) (line 1)",
  );
});

test("a YAML syntax error names the line and column", () => {
  assert.equal(
    errorOf("model_groups:\n  - model_group: g\n    models: [\n  bad: :\n"),
    "Cannot load config 'llmproxy.yaml': YAML syntax error at line 4, column 8: " +
      "missed comma between flow collection entries",
  );
  assert.equal(
    errorOf("a: 1\na: 2\n"),
    "Cannot load config 'llmproxy.yaml': YAML syntax error at line 2, column 1: duplicated mapping key",
  );
  assert.match(errorOf("a: 1\n---\nb: 2\n"), /YAML syntax error: expected a single document in the stream/);
  assert.match(errorOf("a: !!binary aGk=\n"), /YAML syntax error at line 1, column \d+: unknown tag/);
});

test("YAML 1.2 core scalars: dates and yes/no stay strings, 0o/0x are numbers", () => {
  const config = parseConfig(
    MINIMAL.replace(
      "api_key: sk-test",
      "api_key: sk-test, headers: { x-day: 2024-01-01 }, timeout: 0x1e, rpm: 0o3",
    ) +
      "  - model_group: yes\n    models: [{ model: m, params: { api_key: k } }]\n",
    "x",
    noEnv,
  );
  const endpoint = config.groups[0].endpoints[0];
  assert.equal(endpoint.headers["x-day"], "2024-01-01");
  assert.equal(endpoint.timeoutMs, 30_000);
  assert.equal(endpoint.rpm, 3);
  assert.equal(config.groups[1].name, "yes");
});

test("nested aliases that expand past the value bound are refused, fast", () => {
  // Ten levels of ten aliases each: 10^10 values once expanded, a few hundred bytes of YAML.
  const levels = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i < 10; i++) levels.push(`l${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(", ")}]`);
  const started = performance.now();
  assert.equal(
    errorOf(levels.join("\n") + "\n"),
    `Cannot load config 'llmproxy.yaml': the file expands to more than ${MAX_CONFIG_VALUES} values (nested aliases?)`,
  );
  assert.ok(performance.now() - started < 5_000);
});

test("an empty file or a non-mapping is rejected", () => {
  assert.equal(
    errorOf(""),
    "Cannot load config 'llmproxy.yaml': the file is empty; it needs at least model_groups",
  );
  assert.equal(
    errorOf("- a\n"),
    "Cannot load config 'llmproxy.yaml': the file must be a mapping, got a list",
  );
  assert.equal(
    errorOf("general_settings: {}\n"),
    "Cannot load config 'llmproxy.yaml': model_groups is required",
  );
});

test("secret values never appear in error messages", () => {
  const secrets = [
    "hunter2-api-key",
    "hunter2-password",
    "hunter2-url",
    "hunter2-client-key",
    "hunter2-header",
  ];
  const message = errorOf(
    `
model_groups:
  - model_group: g
    models:
      - model: m
        weight: -1
        params:
          base_url: "https://user:hunter2-url@a.example.com/?key=hunter2-url"
          api_key: [hunter2-api-key]
          headers: { Authorization: [hunter2-header] }
general_settings:
  redis_url: http://:hunter2-url@redis.example.com
  redis_password: [hunter2-password]
  api_keys: [[hunter2-client-key]]
  admin_keys: os.environ/ADMIN
`,
    envOf({ ADMIN: "" }),
  );
  for (const secret of secrets) assert.ok(!message.includes(secret), `${secret} leaked into:\n${message}`);
  assert.match(message, /params\.api_key must be a string, got <redacted>/);
  assert.match(
    message,
    /general_settings\.redis_url must be a redis:\/\/ or rediss:\/\/ URL, got <redacted>/,
  );
  assert.match(message, /params\.base_url must not contain credentials/);
});

test("loadConfig reads a file and reports a missing one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/llmproxy.yaml`;
    await Deno.writeTextFile(path, MINIMAL);
    const config = await loadConfig(path, noEnv);
    assert.equal(config.source, path);
    assert.equal(config.groups[0].name, "gpt-4o-mini");
    await assert.rejects(
      loadConfig(`${dir}/x.yaml`, noEnv),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.message.startsWith(`Cannot load config '${dir}/x.yaml': file not found; `) &&
        error.message.includes(`cp llmproxy.yaml.example ${dir}/x.yaml`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const EXAMPLE_ENV = envOf({
  AZURE_EASTUS_ENDPOINT: "https://my-eastus.openai.azure.com",
  AZURE_EASTUS_KEY: "azure-east-key",
  AZURE_SWEDEN_ENDPOINT: "https://my-sweden.cognitiveservices.azure.com/",
  AZURE_SWEDEN_KEY: "azure-sweden-key",
  OPENAI_API_KEY: "sk-openai",
  OPENAI_ORG_ID: "org-1",
  OPENAI_PROJECT_ID: "proj-1",
  AZURE_PTU_ENDPOINT: "https://my-ptu.openai.azure.com",
  AZURE_CLIENT_SECRET: "entra-secret",
  REDIS_URL: "redis://localhost:6379",
  REDIS_HOST: "localhost",
  REDIS_PORT: "6379",
  REDIS_PASSWORD: "pw",
  LLMPROXY_KEY: "client-key",
  LLMPROXY_ADMIN_KEY: "admin-key",
  TEAM_A_KEY: "team-a-key",
});

const exampleText = () => Deno.readTextFile(new URL("../../llmproxy.yaml.example", import.meta.url));

test("llmproxy.yaml.example loads and shows each kind of endpoint", async () => {
  const config = parseConfig(await exampleText(), "llmproxy.yaml.example", EXAMPLE_ENV);
  const [chat, embeddings] = config.groups;
  const [classic, v1, fallback] = chat.endpoints;
  assert.equal(classic.provider, "azure");
  assert.equal(classic.apiVersion, "2024-10-21");
  assert.equal(classic.id, "eastus");
  assert.equal(v1.provider, "azure");
  assert.equal(v1.apiVersion, undefined);
  assert.equal(v1.baseUrl, "https://my-sweden.cognitiveservices.azure.com");
  assert.equal(fallback.provider, "openai");
  assert.equal(fallback.weight, 0);
  assert.equal(embeddings.endpoints[0].apiVersion, "2024-10-21");
  assert.equal(config.settings.redis, undefined);
  assert.deepEqual(config.settings.apiKeys, []);
});

test("llmproxy.yaml.example: its commented-out options are valid and every option is documented", async () => {
  const text = await exampleText();
  // A commented-out option is a line `# key: value`; explanations never take that form.
  const uncommented = text.replace(/^(\s*)# (\s*(?:- )?[a-z_]+:(?: |$))/gm, "$1$2");
  const config = parseConfig(uncommented, "llmproxy.yaml.example", EXAMPLE_ENV);
  assert.equal(config.settings.redis?.url, "redis://localhost:6379");
  assert.deepEqual(config.settings.redis?.clusterNodes, ["10.0.0.1:6379", "10.0.0.2:6379"]);
  assert.deepEqual(config.settings.apiKeys, ["client-key"]);
  assert.deepEqual(config.settings.adminKeys, ["admin-key"]);
  assert.equal(config.groups[0].endpoints[2].headers["OpenAI-Project"], "proj-1");
  assert.equal(config.settings.maxBodyBytes, 10485760);
  assert.deepEqual(config.keys.entries.map((key) => key.name), ["team-a"]);
  assert.equal(config.keys.prices.get("gpt-4o-mini")?.cachedInput, 0.075);

  // Each key in its own mapping (an endpoint's rpm is not a key's rpm): the uncommented file's keys, by holder.
  const found = new Map<string, Set<string>>();
  const walk = (value: unknown, holder: string): void => {
    if (Array.isArray(value)) return value.forEach((item) => walk(item, holder));
    if (value === null || typeof value !== "object") return;
    for (const [key, inner] of Object.entries(value)) {
      if (!found.has(holder)) found.set(holder, new Set());
      found.get(holder)!.add(key);
      walk(inner, holder === "prices" ? "price" : key);
    }
  };
  walk(parseYaml(uncommented, "llmproxy.yaml.example"), "top");
  const sections: [string, readonly string[]][] = [
    ...Object.entries(KNOWN_KEYS),
    ["price", Object.keys(PriceSchema.shape)],
  ];
  const missing = sections.flatMap(([holder, keys]) =>
    keys.filter((key) => !found.get(holder)?.has(key)).map((key) => `${holder}.${key}`)
  );
  // key_sha256 is the other way to give `key` (one of the two): it stays a comment, on the line after it.
  assert.match(text, /^#\s+key: .*\n#\s+key_sha256: [0-9a-f]{64}/m);
  missing.splice(missing.indexOf("keys.key_sha256"), 1);
  assert.deepEqual(missing, [], "options missing from their place in the example");
});

test("a key or header value with a control character is refused at load, without echoing it", () => {
  const yaml = () =>
    `model_groups:\n  - model_group: g\n    models:\n      - model: m\n        params:\n          base_url: https://api.openai.com\n          api_key: os.environ/KEY\n          headers: { x-extra: os.environ/EXTRA }\n`;
  for (const [key, extra] of [["sk-one\nsk-two", "ok"], ["sk-fine", "bad\u0000value"]]) {
    assert.throws(
      () => parseConfig(yaml(), "k.yaml", (name) => (name === "KEY" ? key : extra)),
      (error: unknown) => {
        const message = (error as Error).message;
        assert.match(message, /control characters/);
        assert.ok(!message.includes("sk-one") && !message.includes("bad\u0000"), message);
        return true;
      },
    );
  }
});

test("upstream_client: http1 unless set, or fetch when a forward proxy is asked for (not for OpenTelemetry)", () => {
  const client = (extra: string, env: Record<string, string> = {}) =>
    parseConfig(MINIMAL + extra, "x", (name) => env[name]).settings.upstreamClient;
  assert.equal(client(""), "http1");
  assert.equal(client("", { HTTPS_PROXY: "http://10.0.0.1:3128" }), "fetch");
  assert.equal(client("", { http_proxy: "http://10.0.0.1:3128" }), "fetch");
  assert.equal(client("", { OTEL_DENO: "true" }), "http1");
  assert.equal(client("", { OTEL_DENO: "false" }), "http1");
  assert.equal(
    client("general_settings:\n  upstream_client: http1\n", { HTTPS_PROXY: "http://p:1" }),
    "http1",
  );
  assert.equal(client("general_settings:\n  upstream_client: fetch\n"), "fetch");
  assert.match(errorOf(MINIMAL + "general_settings:\n  upstream_client: curl\n"), /upstream_client/);
});
