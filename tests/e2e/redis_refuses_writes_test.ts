/**
 * A Redis that answers but refuses writes: out of memory under `maxmemory-policy noeviction` (every write answers
 * `OOM command not allowed ...`). That is an outage of the shared state, like a demoted master's `READONLY`: the
 * proxy serves from local state, so a key's limits still hold (on this instance's counts) instead of every limit
 * being let through and no usage charged, `/health` and `/metrics` say so, the log says it once rather than five
 * warnings per request nor one per retry period, and it is shared again once Redis takes writes.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-team-a-90e1";
const OTHER = "sk-team-b-2c5d";
const ADMIN = "sk-admin-3f7a";

/**
 * The refusal is warned of once, and nothing after it (not once per retry period). Before it, Redis may have been
 * slow (a loaded machine: "no answer within" the wait bound): an outage of its own, warned of once, over when its
 * late answers came. Then the first refused write is a new one.
 */
function assertOneRefusalWarning(warnings: readonly { msg: string; reason?: string }[]): void {
  const text = JSON.stringify(warnings);
  const refusal = warnings.findIndex((warning) => /^OOM\b/.test(warning.reason ?? ""));
  assert.ok(refusal >= 0, `the refusal is warned of: ${text}`);
  assert.equal(warnings.length, refusal + 1, `nothing after the refusal's warning: ${text}`);
  assert.ok(refusal <= 1, `one warning, not one per retry: ${text}`);
  if (refusal === 1) assert.match(warnings[0].reason ?? "", /^no answer within/, text);
}

/** Redis, the simulated upstream and a proxy over them (cache on, warnings logged), with a chat and `/health`. */
async function setUp() {
  const stack = new AsyncDisposableStack();
  try {
    const redis = stack.use(await startRedis());
    const sim = stack.use(await SimUpstream.start({ name: "east", quiet: true }));
    const proxy = stack.use(
      await startProxy(
        [
          "model_groups:",
          "  - model_group: gpt-test",
          "    models:",
          endpointYaml(sim.url, { name: "east" }),
          "general_settings:",
          "  cache: true",
          `  redis_url: ${redis.url}`,
          `  admin_keys: [${ADMIN}]`,
          "keys:",
          `  - {name: team-a, key: ${KEY}, rpm: 3}`,
          `  - {name: team-b, key: ${OTHER}}`,
        ].join("\n") + "\n",
        { logLevel: "warn" },
      ),
    );
    const chat = async (content: string, key = KEY) => {
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }] }),
      });
      await response.body?.cancel();
      return response.status;
    };
    const health = async () => (await (await fetch(`${proxy.url}/health`)).json()).store;
    const warnings = (): { msg: string; reason?: string }[] =>
      proxy.logs.map((line) => JSON.parse(line)).filter((line) => line.level === "warn");
    const moved = stack.move();
    return { redis, proxy, chat, health, warnings, [Symbol.asyncDispose]: () => moved.disposeAsync() };
  } catch (error) {
    await stack.disposeAsync();
    throw error;
  }
}

test({
  name:
    "Redis out of memory (noeviction): limits still hold on local state, /health degraded, one warning, back after",
  ignore: !hasRedis,
  timeout: 20_000,
  async fn() {
    await using running = await setUp();
    const { redis, proxy, chat, health, warnings } = running;
    assert.equal(await redis.command("CONFIG", "SET", "maxmemory-policy", "noeviction"), "OK");
    assert.equal(await redis.command("CONFIG", "SET", "maxmemory", "1"), "OK");
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push(await chat(`question ${i}`));
    assert.deepEqual(statuses, [200, 200, 200, 429, 429], "rpm 3 holds while Redis refuses writes");
    const during = await health();
    assert.equal(during.status, "degraded");
    assert.deepEqual(during.nodes_down, [`127.0.0.1:${redis.port}`]);
    const metrics =
      await (await fetch(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } }))
        .text();
    assert.match(metrics, /llmproxy_store_up\{kind="redis"\} 0/);
    // Past the 1 s retry period, calls try Redis again: it answers their reads, refuses their writes. Still down:
    // a read it answers is no sign it keeps state again (read as one, it went up and down, a warning each time).
    await delay(1200);
    for (let i = 0; i < 3; i++) assert.equal(await chat(`other ${i}`, OTHER), 200);
    assert.equal((await health()).status, "degraded");
    assertOneRefusalWarning(warnings());
    assert.ok(!proxy.logs.some((line) => JSON.parse(line).level === "error"));

    assert.equal(await redis.command("CONFIG", "SET", "maxmemory", "0"), "OK");
    const deadline = Date.now() + 5000;
    while ((await health()).status !== "ok") {
      // Calls go local for a second, then one tries Redis again.
      if (Date.now() > deadline) throw new Error("/health never said ok again");
      await chat("after");
      await delay(100);
    }
  },
});

test({
  name: "Redis hung, then refusing writes: one warning for each, none per retry period",
  ignore: !hasRedis,
  timeout: 20_000,
  async fn() {
    await using running = await setUp();
    const { redis, chat, health, warnings } = running;
    assert.equal(await redis.command("CONFIG", "SET", "maxmemory-policy", "noeviction"), "OK");
    assert.equal(await redis.command("CONFIG", "SET", "maxmemory", "1"), "OK");
    // As on a loaded machine: Redis answers after the wait bound. Its late answers take the node back (a read's)
    // and down again (the key's charge, a write, refused): the hang is warned of, then the refusal.
    await redis.signal("SIGSTOP");
    try {
      assert.equal(await chat("while hung"), 200);
    } finally {
      await redis.signal("SIGCONT");
    }
    assert.equal(await redis.command("PING"), "PONG");
    // Past the 1 s retry period, calls try Redis again: it answers reads, refuses writes; nothing more is warned of.
    await delay(1200);
    for (let i = 0; i < 3; i++) assert.equal(await chat(`after ${i}`, OTHER), 200);
    assert.equal((await health()).status, "degraded");
    const seen = warnings();
    assert.match(seen[0]?.reason ?? "", /^no answer within/, "the hang is warned of");
    assertOneRefusalWarning(seen);
  },
});
