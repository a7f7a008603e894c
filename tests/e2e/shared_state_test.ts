/** Two proxy instances on one redis-server act as one: cooldowns and failure counts are shared. */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const chat = async (url: string) => {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "x" }] }),
  });
  await response.body?.cancel();
  return response;
};

test({
  name: "an endpoint cooled down by instance A is skipped by instance B",
  ignore: !hasRedis,
  fn: async () => {
    await using redis = await startRedis();
    await using a = await SimUpstream.start({ name: "a", quiet: true });
    await using b = await SimUpstream.start({ name: "b", quiet: true });
    const yaml = groupYaml(
      [endpointYaml(a.url, { name: "a", weight: 1 }), endpointYaml(b.url, { name: "b", weight: 1 })],
      [`redis_url: ${redis.url}`, "allowed_fails: 2"],
    );
    await using first = await startProxy(yaml);
    await using second = await startProxy(yaml);
    a.always({ kind: "status", status: 500 });
    // One failure through each instance: together they reach allowed_fails (2).
    for (const proxy of [first, second]) {
      while (a.count() < (proxy === first ? 1 : 2)) assert.equal((await chat(proxy.url)).status, 200);
    }
    a.always({ kind: "ok" });
    for (let i = 0; i < 6; i++) {
      const response = await chat(second.url);
      assert.equal(response.headers.get("x-llmproxy-endpoint"), "b");
    }
    assert.equal(a.count(), 2, "instance B skipped a while it cools down");
    const stats = await (await fetch(`${first.url}/stats`)).json();
    assert.equal(stats.store.kind, "redis");
    assert.equal(
      stats.endpoints.find((endpoint: { id: string }) => endpoint.id === "a").state,
      "cooling_down",
    );
  },
});

test("with no Redis the same holds within one process (in-memory state)", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(
    groupYaml(
      [endpointYaml(a.url, { name: "a", weight: 1 }), endpointYaml(b.url, { name: "b", weight: 1 })],
      [
        "allowed_fails: 2",
      ],
    ),
  );
  a.always({ kind: "status", status: 500 });
  for (let i = 0; i < 8; i++) assert.equal((await chat(proxy.url)).status, 200);
  assert.equal(a.count(), 2);
  const health = await (await fetch(`${proxy.url}/health`)).json();
  assert.equal(health.status, "ok");
  assert.deepEqual(health.model_groups["gpt-test"], { healthy: 1, total: 2 });
  assert.equal(health.store.kind, "memory");
});
