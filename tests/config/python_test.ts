/** Config files of the Python LLMProxy (fixtures shaped like its example and test configs) load unchanged. */

import assert from "node:assert/strict";
import { ConfigError } from "../../src/config/load.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { test } from "../_support/test.ts";

const fixture = (name: string) => Deno.readTextFile(new URL(`../fixtures/python/${name}`, import.meta.url));
const envOf = (vars: Record<string, string>) => (name: string): string | undefined => vars[name];
const noEnv = () => undefined;
const keysOf = (config: { ignored: readonly { key: string }[] }) => config.ignored.map((entry) => entry.key);

function errorOf(text: string): string {
  try {
    parseConfig(text, "llmproxy.yaml", noEnv);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error.message;
  }
  assert.fail("expected the config to be rejected");
}

const EXAMPLE_ENV = envOf({
  AZURE_KEY_EAST: "azure-east",
  AZURE_ENDPOINT_EAST: "https://east.openai.azure.com/",
  AZURE_KEY_WEST: "azure-west",
  AZURE_ENDPOINT_WEST: "https://west.openai.azure.com",
  OPENAI_API_KEY: "sk-openai",
  REDIS_HOST: "redis.internal",
  REDIS_PORT: "6380",
  REDIS_PASSWORD: "pw",
  REDIS_SSL: "true",
  REDIS_SSL_CERT_REQS: "none",
});

test("the Python example config loads; the keys it reads and this proxy does not are listed with reasons", async () => {
  const config = parseConfig(await fixture("example.yaml"), "llmproxy.yaml", EXAMPLE_ENV);
  assert.deepEqual(config.groups.map((group) => group.name), ["gpt-4o-mini", "gpt-4"]);
  const [east, west, fallback] = config.groups[0].endpoints;
  assert.equal(east.provider, "azure");
  assert.equal(east.baseUrl, "https://east.openai.azure.com");
  assert.equal(east.apiVersion, "2024-02-15-preview");
  assert.equal(west.apiKey, "azure-west");
  assert.equal(fallback.provider, "openai");
  assert.equal(fallback.weight, 0);
  const s = config.settings;
  assert.deepEqual(s.redis, { host: "redis.internal", port: 6380, password: "pw", tls: true });
  assert.equal(s.namespace, "llmproxy.cache");
  assert.equal(s.port, 4000);
  // cache_params name the same server as redis_*: they are in use, so not listed.
  assert.deepEqual(keysOf(config), [
    "general_settings.http_max_connections",
    "general_settings.redis_ssl_cert_reqs",
    "general_settings.cache_params.type",
  ]);
  for (const { reason } of config.ignored) assert.ok(reason.length > 20, reason);
  assert.ok(!JSON.stringify(config.ignored).includes("pw"), "no secret in a reason");
});

test("the Python test config loads: empty password, redis_ssl: false, redis_ssl_cert_reqs: null", async () => {
  const config = parseConfig(await fixture("test.yaml"), "llmproxy.test.yaml", noEnv);
  assert.equal(config.groups[0].endpoints.length, 3);
  assert.deepEqual(config.settings.redis, { host: "localhost", port: 6379, tls: false });
  assert.equal(config.settings.cacheTtlSeconds, 300);
  assert.equal(config.settings.namespace, "llmproxy.test");
  assert.deepEqual(keysOf(config), ["general_settings.cache_params.type"]);
});

test("null, ~ and an empty value mean 'not set' for every optional key", async () => {
  const config = parseConfig(await fixture("nulls.yaml"), "nulls.yaml", noEnv);
  const [azure, openai] = config.groups[0].endpoints;
  assert.equal(azure.provider, "azure");
  assert.equal(azure.apiVersion, undefined);
  assert.equal(azure.query, undefined);
  assert.deepEqual(azure.headers, {});
  assert.equal(openai.weight, 1);
  assert.equal(openai.timeoutMs, 300_000);
  const s = config.settings;
  assert.equal(s.redis, undefined);
  assert.equal(s.httpTimeoutMs, 300_000);
  assert.equal(s.namespace, "llmproxy");
  assert.equal(s.responseAffinityTtlSeconds, 21600);
  assert.deepEqual(keysOf(config), ["general_settings.cache_params.type"]);
});

test("a null required key is still named, and unknown keys still stop start-up", () => {
  const base =
    "model_groups:\n  - model_group: g\n    models:\n      - model: m\n        params: { api_key: k }\n";
  assert.match(
    errorOf(base.replace("model_group: g", "model_group: null")),
    /model_groups\[0\]\.model_group must be a string, got nothing/,
  );
  assert.match(
    errorOf(base.replace("model: m", "model:")),
    /models\[0\]\.model must be a string, got nothing/,
  );
  assert.match(errorOf("model_groups: ~\n"), /model_groups must be a list, got nothing/);
  assert.match(
    errorOf(`${base}general_settings:\n  http_max_conections: null\n`),
    /http_max_conections is not a known key/,
  );
  assert.match(errorOf(`${base}colour: null\n`), /colour is not a known key/);
  // A header's value is data, not an optional key: null there is still wrong.
  assert.match(
    errorOf(base.replace("api_key: k", "api_key: k, headers: { x-a: null }")),
    /x-a must be a string/,
  );
});

test("cache_params naming another Redis server than general_settings, and OpenAI client options, are listed", () => {
  const text = `
model_groups:
  - model_group: g
    models:
      - model: m
        params: { api_key: k, max_retries: 2, websocket_base_url: "wss://x.example" }
general_settings:
  redis_host: a.internal
  redis_port: 6379
  cache_params: { host: b.internal, port: 6379, password: other }
  usage_stream: { enabled: true, stream_key: "llmproxy-telemetry:usage", caller_headers: [x-team] }
`;
  const config = parseConfig(text, "x", noEnv);
  assert.deepEqual(keysOf(config), [
    "model_groups[0].models[0].params.max_retries",
    "model_groups[0].models[0].params.websocket_base_url",
    "general_settings.usage_stream.caller_headers",
    "general_settings.cache_params.host",
    "general_settings.cache_params.password",
  ]);
  assert.deepEqual(config.settings.redis, { host: "a.internal", port: 6379, tls: false });
  // Without a server in general_settings, cache_params name it (the Python fallback): nothing ignored.
  const own = parseConfig(text.replace(/ {2}redis_(host|port): .*\n/g, ""), "x", noEnv);
  assert.deepEqual(own.settings.redis, { host: "b.internal", port: 6379, password: "other", tls: false });
  assert.ok(!keysOf(own).some((key) => key.includes("cache_params")));
  // With redis_url, any cache_params server is ignored.
  const url = parseConfig(
    text.replace("redis_host: a.internal", "redis_url: redis://a.internal:6379"),
    "x",
    noEnv,
  );
  assert.ok(keysOf(url).includes("general_settings.cache_params.port"));
});
