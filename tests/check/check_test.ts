/**
 * The validator (`src/check/`) as a user meets it: loading a config file. Values from the environment arrive as
 * strings, nulls mean "not set", defaults fill what is absent, and every problem is one line naming the path and
 * the value, in the file's order, unknown keys last with a suggestion.
 */

import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../src/config/load.ts";
import { test } from "../_support/test.ts";

const GROUP = `
model_groups:
  - model_group: g
    models:
      - model: m
        params: { base_url: "https://api.example/v1", api_key: sk-test }
`;

/** Loads `text` from a file of its own, with `env` for `os.environ/NAME`. */
async function load(text: string, env: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/llmproxy.yaml`, text);
    return await loadConfig(`${dir}/llmproxy.yaml`, (name) => env[name]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The lines of the ConfigError that loading `text` throws. */
async function problems(text: string): Promise<string[]> {
  const error = await load(text).then(() => undefined, (error: unknown) => error);
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
  return [...error.problems];
}

test("string forms from the environment: numbers, flags and comma lists; nulls are unset", async () => {
  const config = await load(
    GROUP + `general_settings:
  bind_port: os.environ/PORT
  reuse_port: os.environ/REUSE
  api_keys: os.environ/KEYS
  cooldown_time: " 1.5 "
  max_body_bytes: ~
  cache_params: { ttl: "60", namespace: ns }
`,
    { PORT: "4001", REUSE: "Yes", KEYS: "sk-a, ,sk-b," },
  );
  assert.equal(config.settings.port, 4001);
  assert.equal(config.settings.reusePort, true);
  assert.deepEqual(config.settings.apiKeys, ["sk-a", "sk-b"]);
  assert.equal(config.settings.cooldownMs, 1500);
  assert.equal(config.settings.maxBodyBytes, 10 * 1024 * 1024, "null is the default");
  assert.deepEqual([config.settings.cacheTtlSeconds, config.settings.namespace], [60, "ns"]);
});

test("defaults fill absent keys, and one load's defaults are not another's", async () => {
  const first = await load(GROUP);
  assert.deepEqual([first.settings.port, first.settings.numRetries, first.settings.cacheMaxEntries], [
    5000,
    3,
    10000,
  ]);
  (first.settings.apiKeys as string[]).push("sk-leak");
  (first.settings.adminKeys as string[]).push("sk-leak");
  const second = await load(GROUP + "general_settings:\n");
  assert.deepEqual([second.settings.apiKeys, second.settings.adminKeys], [[], []]);
  assert.equal(second.settings.namespace, "llmproxy");
});

test("one line per problem, in file order; a fraction stops an integer's bounds; unknown keys last", async () => {
  assert.deepEqual(
    await problems(`
model_groups:
  - model_group: ""
    models: []
    routing: fastest
    colour: red
general_settings:
  bind_port: -80.5
  num_retries: -1
  http_timeout: "0"
  redis_max_wait: 61
  cache: maybe
  bind_prot: 1
`),
    [
      "model_groups[0].model_group must not be empty (line 3)",
      "model_groups[0].models must have at least 1 entry (line 4)",
      'model_groups[0].routing must be one of "weighted", "least_busy", "latency", got "fastest" (line 5)',
      "model_groups[0].colour is not a known key (line 6)",
      "general_settings.bind_port must be an integer, got -80.5 (line 8)",
      'general_settings.http_timeout must be > 0, got "0" (line 10)',
      "general_settings.num_retries must be >= 0, got -1 (line 9)",
      "general_settings.redis_max_wait must be <= 60, got 61 (line 11)",
      'general_settings.cache must be true or false, got "maybe" (line 12)',
      "general_settings.bind_prot is not a known key (did you mean 'bind_port'?) (line 13)",
    ],
  );
});

test("required keys, wrong kinds of value, refinements and header maps", async () => {
  assert.deepEqual(
    await problems(`
model_groups:
  - models:
      - model: [a]
        weight: [1]
        params:
          base_url: "ftp://files.example"
          headers: { "bad name": x, X-Ok: "line\\nbreak", X-Num: 5 }
      - model: []
        priority: 1e20
general_settings: { redis_url: "http://h", admin_keys: [""] }
`),
    [
      "model_groups[0].model_group is required (line 3)",
      "model_groups[0].models[0].model must be a string, got a list (line 4)",
      "model_groups[0].models[0].weight must be a number, got a list (line 5)",
      'model_groups[0].models[0].params.base_url must be an http(s) URL, got "ftp://files.example" (line 7)',
      'model_groups[0].models[0].params.headers["bad name"] Invalid key in record, got <redacted> (line 8)',
      "model_groups[0].models[0].params.headers.X-Ok must not contain control characters or non-Latin-1 text, got <redacted> (line 8)",
      "model_groups[0].models[1].model must be a string, got a list (line 9)",
      "model_groups[0].models[1].model must have at least 1 entry (line 9)",
      "model_groups[0].models[1].priority must be <= 9007199254740991, got 100000000000000000000 (line 10)",
      "general_settings.redis_url must be a redis:// or rediss:// URL, got <redacted> (line 11)",
      "general_settings.admin_keys[0] must not be empty (line 11)",
    ],
  );
});
