/** The `keys:` list, `prices:` and `usage_stream` as a user writes them, and the messages for mistakes. */

import assert from "node:assert/strict";
import { ConfigError } from "../../src/config/load.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { digestOf, modelMatcher } from "../../src/keys/policy.ts";
import { test } from "../_support/test.ts";

const GROUPS = "model_groups:\n" +
  ["g", "gpt-4o-mini", "embed"].map((group) =>
    `  - {model_group: ${group}, models: [{model: m, params: {base_url: http://127.0.0.1:1, api_key: x}}]}\n`
  ).join("");

const parse = (yaml: string, env: Record<string, string> = {}) =>
  parseConfig(GROUPS + yaml, "keys.yaml", (name) => env[name]);

function problems(yaml: string): string {
  try {
    parse(yaml);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  assert.fail("the config loaded");
}

test("keys: a key from the environment or as a SHA-256, policy fields, defaults", () => {
  const hash = digestOf("sk-hashed").toUpperCase();
  const config = parse(
    [
      "keys:",
      "  - name: team-a",
      "    key: os.environ/TEAM_A",
      "    models: [gpt-4o*, embed]",
      "    rpm: 5",
      "    tpm: '1000'",
      "    max_parallel: 2",
      "    tokens_per_day: 100000",
      "    tokens_per_month: 2000000",
      "    usd_per_month: 12.5",
      "    expires: 2028-02-29",
      "    cache: private",
      "  - name: team-b",
      `    key_sha256: ${hash}`,
      "prices:",
      "  gpt-4o: {input: 2.5, cached_input: 1.25, output: 10}",
      "  gpt-4o-mini: {input: 0.15, output: 0.6}",
      "general_settings:",
      "  redis_url: redis://127.0.0.1:6379",
      "  usage_stream: {enabled: true, max_len: 500}",
    ].join("\n"),
    { TEAM_A: "sk-team-a" },
  );
  const [a, b] = config.keys.entries;
  assert.equal(a.digest, digestOf("sk-team-a"));
  assert.deepEqual(
    [a.rpm, a.tpm, a.maxParallel, a.tokensPerDay, a.tokensPerMonth, a.usdPerMonth, a.cache],
    [5, 1000, 2, 100000, 2000000, 12.5, "private"],
  );
  assert.equal(a.expiresAt, Date.parse("2028-02-29T00:00:00Z"), "a leap day is a day");
  assert.ok(a.allows("gpt-4o-mini") && a.allows("embed") && !a.allows("gpt-3.5") && !a.allows("embed-2"));
  assert.equal(b.digest, digestOf("sk-hashed"), "a hash is held lower-case");
  assert.deepEqual([b.models, b.cache, b.limited, a.limited], [["*"], "shared", false, true]);
  assert.deepEqual(config.keys.prices.get("gpt-4o-mini"), { input: 0.15, cachedInput: 0.15, output: 0.6 });
  assert.deepEqual(config.keys.usageStream, { key: "llmproxy-telemetry:usage", maxLen: 500 });
  assert.equal(parse("").keys.entries.length, 0);
});

test("keys: a models entry that matches no model group is an error naming it and the groups", () => {
  const message = problems("keys: [{name: a, key: k, models: [g, gpt4o-mini, 'gpt-5*']}]");
  assert.match(
    message,
    /keys\[0\]\.models\[1\] must match a model group, got "gpt4o-mini" \(groups: g, gpt-4o-mini, embed\)/,
  );
  assert.match(message, /keys\[0\]\.models\[2\] must match a model group, got "gpt-5\*"/);
  assert.ok(!/models\[0\]/.test(message), message);
  assert.equal(parse("keys: [{name: a, key: k, models: 'gpt-4o*, embed'}]").keys.entries.length, 1);
});

test("keys: mistakes are named with their path, and no key text is shown", () => {
  const both = problems("keys: [{name: a, key: sk-secret-1, key_sha256: " + "a".repeat(64) + "}]");
  assert.match(both, /keys\[0\] needs exactly one of 'key' and 'key_sha256'/);
  assert.match(problems("keys: [{name: a}]"), /keys\[0\] needs exactly one/);
  const twice = problems("keys: [{name: a, key: sk-one}, {name: a, key: sk-one}]");
  assert.match(twice, /keys\[1\]\.name must be unique/);
  assert.match(twice, /keys\[1\] has the same key as keys\[0\]/);
  assert.ok(!twice.includes("sk-one"));
  assert.match(
    problems("keys: [{name: a, key: k, rmp: 5}]"),
    /keys\[0\]\.rmp is not a known key \(did you mean 'rpm'\?\)/,
  );
  assert.match(
    problems("prices: {gpt-4o: {input: 1, ouput: 2}}"),
    /prices\.gpt-4o\.ouput is not a known key \(did you mean 'output'\?\)/,
  );
  assert.match(
    problems("keys: [{name: a, key: k, expires: next week}]"),
    /keys\[0\]\.expires must be a date/,
  );
  for (const day of ["2030-02-30", "2030-04-31T12:00:00Z", "2029-02-29"]) {
    assert.match(
      problems(`keys: [{name: a, key: k, expires: ${day}}]`),
      /keys\[0\]\.expires must be a date/,
      day,
    );
  }
  assert.match(
    problems("keys: [{name: a, key: k, cache: none}]"),
    /keys\[0\]\.cache must be one of "shared", "private"/,
  );
  assert.match(problems("keys: [{name: 'a b', key: k}]"), /keys\[0\]\.name must be 1-64 characters/);
  assert.match(problems("prices: {gpt-4o: {input: 1}}"), /prices\.gpt-4o\.output is required/);
});

test("model patterns: exact names and * wildcards, escaped", () => {
  const allows = modelMatcher(["gpt-4o", "o*-mini", "a.b"]);
  assert.ok(allows("gpt-4o") && allows("o3-mini") && allows("o-mini") && allows("a.b"));
  assert.ok(!allows("gpt-4o-mini") && !allows("o3-mini-x") && !allows("axb"));
  assert.ok(modelMatcher(["*"])("anything"));
});
