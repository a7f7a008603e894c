/**
 * Redis Sentinel: two proxy instances find the master through three real `redis-sentinel` processes and share
 * state; the master is SIGKILLed under load, Sentinel promotes the replica, no request fails meanwhile, and the
 * instances share state on the new master once it is promoted.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { hasRedis } from "../_support/redis.ts";
import { MASTER_NAME, startSentinels } from "../_support/redis_sentinel.ts";
import { available, test } from "../_support/test.ts";

const ask = async (proxy: RunningProxy, content: string) => {
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }] }),
  });
  await response.text();
  return { status: response.status, cache: response.headers.get("x-llmproxy-cache") };
};

test({
  name:
    "Sentinel: instances share state through the master Sentinel names, and a failover under load loses no request",
  ignore: !hasRedis || !available("redis-sentinel"),
  timeout: 60_000,
  async fn() {
    await using set = await startSentinels();
    await using sim = await SimUpstream.start({ name: "a", quiet: true });
    const yaml = groupYaml([endpointYaml(sim.url, { name: "a", extra: "          rpm: 1000000" })], [
      "cache: true",
      "redis_sentinels:",
      ...set.sentinels.map((address) => `  - ${address}`),
      `redis_sentinel_master: ${MASTER_NAME}`,
    ]);
    await using a = await startProxy(yaml);
    await using b = await startProxy(yaml);

    assert.equal((await ask(a, "before")).cache, "MISS");
    await a.services.cache.settled();
    assert.equal((await ask(b, "before")).cache, "HIT", "shared through the master");
    assert.ok(Number(await set.master.command("DBSIZE")) > 0, "the state is on the master Sentinel named");

    // Load from four clients over both instances while the master dies and Sentinel promotes the replica.
    const statuses: number[] = [];
    let running = true;
    let n = 0;
    const loops = Array.from({ length: 4 }, async () => {
      const deadline = Date.now() + 30_000;
      while (running && Date.now() < deadline) {
        const i = n++;
        statuses.push((await ask(i % 2 === 0 ? a : b, `load ${i % 40}`)).status);
      }
    });
    await delay(300);
    await set.master.signal("SIGKILL");
    const deadline = Date.now() + 20_000;
    while ((await set.masterPort()) !== set.replica.port && Date.now() < deadline) await delay(100);
    assert.equal(await set.masterPort(), set.replica.port, "Sentinel promoted the replica");
    // The instances follow: state is shared again, on the new master.
    let shared = false;
    for (let round = 0; !shared && Date.now() < deadline; round++) {
      const prompt = `after failover ${round}`;
      await ask(a, prompt);
      await a.services.cache.settled();
      shared = (await ask(b, prompt)).cache === "HIT";
      if (!shared) await delay(200);
    }
    running = false;
    await Promise.all(loops);
    assert.ok(shared, "shared again on the promoted replica");
    assert.ok(statuses.length > 20, `load ran: ${statuses.length} requests`);
    assert.deepEqual(statuses.filter((status) => status !== 200), [], "no request failed");
    const health = await (await fetch(`${a.url}/health`)).json();
    assert.equal(health.store.status, "ok");
  },
});
