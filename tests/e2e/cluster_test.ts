/**
 * Three proxy instances on one real 3-master Redis Cluster (started once for this file) act as one: rpm budgets
 * are never exceeded across instances, cache entries and coalescing are shared, and Responses affinity holds.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { type Clock, systemClock } from "../../src/core/clock.ts";
import { BUDGET_WINDOW_MS, windowEnd } from "../../src/ratelimit/budget.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { hasRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";
import { hasRedisCli, type RedisCluster, startCluster } from "../_support/redis_cluster.ts";

const ask = async (proxy: RunningProxy, content: string) => {
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }] }),
  });
  return {
    status: response.status,
    cache: response.headers.get("x-llmproxy-cache"),
    text: await response.text(),
  };
};

/** Three instances of one config on the cluster, with the proxy clock 500 ms into a budget window. */
async function trio(cluster: RedisCluster, endpoints: string[], settings: string[]) {
  const real = Date.now();
  const offset = windowEnd(real, BUDGET_WINDOW_MS) + 500 - real;
  const clock: Clock = { now: () => Date.now() + offset, sleep: systemClock.sleep };
  const yaml = groupYaml(endpoints, [
    "redis_cluster_nodes:",
    ...cluster.seeds.map((seed) => `  - ${seed}`),
    `cache_params:`,
    `  namespace: t${crypto.randomUUID().slice(0, 8)}`,
    ...settings,
  ]);
  const proxies: RunningProxy[] = [];
  try {
    for (let i = 0; i < 3; i++) proxies.push(await startProxy(yaml, { clock }));
  } catch (error) {
    await Promise.all(proxies.map((proxy) => proxy.close()));
    throw error;
  }
  return {
    proxies,
    [Symbol.asyncDispose]: async () => void await Promise.all(proxies.map((proxy) => proxy.close())),
  };
}

async function sims(...names: string[]) {
  const started = await Promise.all(
    names.map((name) => SimUpstream.start({ name, quiet: true, latencyMs: 5 })),
  );
  return {
    sims: started,
    [Symbol.asyncDispose]: async () => void await Promise.all(started.map((sim) => sim.close())),
  };
}

test({
  name: "three proxy instances on a 3-master Redis Cluster act as one",
  ignore: !hasRedis || !hasRedisCli,
  timeout: 40_000,
  async fn(t) {
    await using cluster = await startCluster();

    await t.step(
      "an rpm budget of 20 per endpoint (60 in all) is never exceeded across instances",
      async () => {
        // Cluster correctness, not the wait bound: a long redis_max_wait, so a saturated machine does not send a
        // budget script to local state. a, b and c hash to three different masters; the cache is on, so cache lookups on other nodes go out in
        // the same ticks as the budget scripts.
        await using up = await sims("a", "b", "c");
        const endpoints = up.sims.map((sim) =>
          endpointYaml(sim.url, { name: sim.name, extra: "          rpm: 20" })
        );
        await using three = await trio(cluster, endpoints, [
          "cache: true",
          "max_wait_for_capacity: 0",
          "redis_max_wait: 5",
        ]);
        const statuses: number[] = [];
        for (let round = 0; round < 10; round++) {
          const replies = await Promise.all(
            Array.from({ length: 12 }, (_, i) => ask(three.proxies[i % 3], `budget ${round}-${i}`)),
          );
          statuses.push(...replies.map((reply) => reply.status));
        }
        assert.deepEqual(up.sims.map((sim) => sim.count()), [20, 20, 20], "each endpoint got exactly its 20");
        assert.equal(statuses.filter((status) => status === 200).length, 60);
        assert.equal(statuses.filter((status) => status === 429).length, 60);
        // Every instance's /stats shows the shared figures (read again if a read outlasted the store's 250 ms
        // bound on a saturated machine and showed this instance's local state).
        for (const proxy of three.proxies) {
          let used: number[] = [];
          for (let i = 0; i < 20 && (i === 0 || !used.every((n) => n === 20)); i++) {
            if (i > 0) await new Promise((resolve) => setTimeout(resolve, 100));
            const stats = await (await fetch(`${proxy.url}/stats`)).json();
            used = stats.endpoints.map((endpoint: { budget: { rpm: { used: number } } }) =>
              endpoint.budget.rpm.used
            );
          }
          assert.deepEqual(used, [20, 20, 20]);
        }
        assert.ok(
          three.proxies.every((proxy) => !proxy.logs.some((line) => line.includes("slots allocation group"))),
        );
      },
    );

    await t.step("an answer cached through one instance is a HIT on the others", async () => {
      await using up = await sims("a", "b", "c");
      const endpoints = up.sims.map((sim) => endpointYaml(sim.url, { name: sim.name }));
      // The sharing, not the wait bound (as the budget step): a cache read past the store's 250 ms bound on a
      // saturated machine would be a local miss.
      await using three = await trio(cluster, endpoints, ["cache: true", "redis_max_wait: 5"]);
      const [a, b, c] = three.proxies;
      const prompts = Array.from({ length: 10 }, (_, i) => `shared entry ${i}`);
      const misses = await Promise.all(prompts.map((prompt) => ask(a, prompt)));
      assert.ok(misses.every((reply) => reply.status === 200 && reply.cache === "MISS"));
      await a.services.cache.settled();
      for (const proxy of [b, c]) {
        const hits = await Promise.all(prompts.map((prompt) => ask(proxy, prompt)));
        assert.deepEqual(hits.map((reply) => reply.cache), Array(10).fill("HIT"));
        assert.deepEqual(hits.map((reply) => reply.text), misses.map((reply) => reply.text));
      }
      assert.equal(up.sims.reduce((sum, sim) => sum + sim.count(), 0), 10);
    });

    await t.step("10 identical JSON requests over three instances make one upstream call", async () => {
      const sim = await SimUpstream.start({ name: "a", quiet: true, latencyMs: 400 });
      try {
        // The sharing, not the wait bound: a lock taken past the store's 250 ms bound on a saturated machine (load
        // 16-20) is a local lock, and each instance then calls the upstream once (3 calls, seen in session 20).
        await using three = await trio(cluster, [endpointYaml(sim.url, { name: "a" })], [
          "cache: true",
          "redis_max_wait: 5",
        ]);
        const replies = await Promise.all(
          Array.from({ length: 10 }, (_, i) => ask(three.proxies[i % 3], "all together")),
        );
        assert.equal(sim.count(), 1);
        assert.ok(replies.every((reply) => reply.status === 200 && reply.text === replies[0].text));
        const kinds = replies.map((reply) => reply.cache).sort();
        assert.deepEqual(kinds, ["COALESCED", ...Array(8).fill("COALESCED"), "MISS"].sort());
      } finally {
        await sim.close();
      }
    });

    await t.step(
      "a Responses conversation started on one instance stays on its endpoint on the others",
      async () => {
        await using up = await sims("east", "west");
        const endpoints = up.sims.map((sim) => endpointYaml(sim.url, { name: sim.name }));
        await using three = await trio(cluster, endpoints, []);
        const clients = three.proxies.map((proxy) =>
          new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "x", maxRetries: 0 })
        );
        const first = await clients[0].responses.create({ model: "gpt-test", input: "remember me" })
          .withResponse();
        const owner = first.response.headers.get("x-llmproxy-endpoint");
        for (let i = 0; i < 6; i++) {
          const next = await clients[1 + (i % 2)].responses
            .create({ model: "gpt-test", input: `turn ${i}`, previous_response_id: first.data.id })
            .withResponse();
          assert.equal(next.response.headers.get("x-llmproxy-endpoint"), owner);
        }
      },
    );
  },
});
