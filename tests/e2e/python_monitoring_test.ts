/**
 * Monitoring built for the Python LLMProxy: `/health?format=python` and `/stats?format=python` answer in its
 * shapes, checked field by field against what that version's `/health` model and `/stats` route returned.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const PY_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/;
const HEALTH_KEYS = [
  "endpoints_configured",
  "model_groups",
  "redis_connected",
  "state_sharing_enabled",
  "status",
  "timestamp",
  "version",
];
const CONFIG_KEYS = ["allowed_fails", "base_url", "id", "is_azure", "model", "weight"];
const STATE_KEYS = [
  "base_url",
  "consecutive_failures",
  "cooldown_until",
  "failed_requests",
  "id",
  "is_azure",
  "last_error",
  "last_error_time",
  "last_success_time",
  "model",
  "status",
  "success_rate",
  "total_requests",
  "weight",
];

async function getJson(url: string) {
  const response = await fetch(url);
  return { status: response.status, body: await response.json() };
}

function twoGroups(a: string, b: string, settings: string[] = []) {
  const azure = endpointYaml(b, {
    name: "b",
    extra: "          provider: azure\n          api_version: 2024-10-21",
  });
  return groupYaml([endpointYaml(a, { name: "a" }), azure], ["allowed_fails: 1", ...settings]);
}

test("/health and /stats ?format=python: the Python shapes, with cooldowns from the shared state", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(twoGroups(a.url, b.url));

  const health = await getJson(`${proxy.url}/health?format=python`);
  assert.equal(health.status, 200);
  assert.deepEqual(Object.keys(health.body).sort(), HEALTH_KEYS);
  assert.equal(health.body.status, "healthy");
  assert.equal(health.body.redis_connected, false, "memory store: no Redis");
  assert.equal(health.body.state_sharing_enabled, false);
  assert.equal(health.body.endpoints_configured, 2);
  assert.deepEqual(health.body.model_groups, ["gpt-test"]);
  assert.match(health.body.timestamp, PY_TIME);

  // Endpoint a fails once (allowed_fails: 1) and cools down; the request fails over to b.
  a.next({ kind: "status", status: 500 });
  const served = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "x" }] }),
  });
  await served.body?.cancel();

  const stats = await getJson(`${proxy.url}/stats?format=python`);
  assert.equal(stats.status, 200);
  assert.deepEqual(Object.keys(stats.body).sort(), [
    "model_groups",
    "timestamp",
    "total_endpoints",
    "total_model_groups",
  ]);
  assert.equal(stats.body.total_model_groups, 1);
  assert.equal(stats.body.total_endpoints, 2);
  assert.match(stats.body.timestamp, PY_TIME);
  // What the Python project's own test_health_and_stats walks: groups, then each endpoint's id/config/state.
  const entries = Object.entries(stats.body.model_groups as Record<string, Record<string, unknown>[]>);
  assert.equal(entries.length, 1);
  const [group, endpoints] = entries[0];
  assert.equal(group, "gpt-test");
  for (const endpoint of endpoints) {
    assert.deepEqual(Object.keys(endpoint).sort(), ["config", "id", "state"]);
    assert.deepEqual(Object.keys(endpoint.config as object).sort(), CONFIG_KEYS);
    assert.deepEqual(Object.keys(endpoint.state as object).sort(), STATE_KEYS);
  }
  const [first, second] = endpoints as {
    id: string;
    config: Record<string, unknown>;
    state: Record<string, unknown>;
  }[];
  assert.deepEqual(first.config, {
    id: "a",
    model: "upstream-model",
    weight: 1,
    base_url: new URL(a.url).origin,
    is_azure: false,
    allowed_fails: 1,
  });
  assert.equal(second.config.is_azure, true);
  assert.equal(first.state.status, "cooling_down");
  assert.match(String(first.state.cooldown_until), PY_TIME);
  assert.equal(first.state.consecutive_failures, 0, "reset when the cooldown began, as in the native view");
  assert.equal(first.state.total_requests, 1);
  assert.equal(first.state.failed_requests, 1);
  assert.equal(first.state.success_rate, 0);
  assert.equal(second.state.status, "healthy");
  assert.equal(second.state.cooldown_until, null);
  assert.equal(second.state.success_rate, 100);
  assert.ok(!JSON.stringify(stats.body).includes("sk-test"), "no key in /stats");

  // Both endpoints of the only group cooling down: degraded (still 200, as the Python version answered).
  b.next({ kind: "status", status: 500 });
  const failed = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "y" }] }),
  });
  await failed.body?.cancel();
  const down = await getJson(`${proxy.url}/health?format=python`);
  assert.equal(down.status, 200);
  assert.equal(down.body.status, "degraded");
  // The native views are unchanged by the parameter's absence.
  assert.ok(Array.isArray((await getJson(`${proxy.url}/stats`)).body.endpoints));
  assert.equal((await getJson(`${proxy.url}/health`)).body.status, "unavailable");
});

test({
  name: "/health?format=python over Redis: redis_connected and healthy, then degraded while Redis is down",
  ignore: !hasRedis,
  timeout: 30_000,
  fn: async () => {
    await using redis = await startRedis();
    await using a = await SimUpstream.start({ name: "a", quiet: true });
    await using proxy = await startProxy(
      groupYaml([endpointYaml(a.url, { name: "a" })], [`redis_url: ${redis.url}`]),
    );
    const up = (await getJson(`${proxy.url}/health?format=python`)).body;
    assert.equal(up.status, "healthy");
    assert.equal(up.redis_connected, true);
    assert.equal(up.state_sharing_enabled, true);
    await redis.stop();
    const deadline = Date.now() + 10_000;
    let body = up;
    while (body.redis_connected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      body = (await getJson(`${proxy.url}/health?format=python`)).body;
    }
    assert.equal(body.redis_connected, false);
    assert.equal(body.status, "degraded");
  },
});

test("DELETE /cache?format=python: the Python shape, {timestamp, deleted_entries, status}", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)], ["cache: true"]));
  const ask = async (content: string) => {
    const response = await fetch(`${proxy.url}/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }] }),
    });
    await response.body?.cancel();
    return response.headers.get("x-llmproxy-cache");
  };
  // Two answers cached (the write is made after the answer went out: asked again until it hits).
  for (const content of ["one", "two"]) {
    for (let i = 0; i < 40 && await ask(content) !== "HIT"; i++) await delay(25);
  }
  const response = await fetch(`${proxy.url}/cache?format=python`, { method: "DELETE" });
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.deepEqual(Object.keys(body).sort(), ["deleted_entries", "status", "timestamp"]);
  assert.equal(body.deleted_entries, 2);
  assert.equal(body.status, "success");
  assert.match(body.timestamp, PY_TIME);
  // The native shape stays.
  assert.deepEqual(await (await fetch(`${proxy.url}/cache`, { method: "DELETE" })).json(), { deleted: 0 });
});
