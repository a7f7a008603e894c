/**
 * `/health` is what load balancers and monitors poll, and anyone may: it answers within a few tens of ms whatever
 * Redis does, in the native shape and the Python one (`?format=python`), however many groups there are, and a
 * flood of it does not become a flood of Redis commands.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

test({
  name:
    "Redis hung: /health?format=python answers within 200 ms like /health (6 model groups), not after the store's 250 ms",
  ignore: !hasRedis,
  timeout: 40_000,
  async fn() {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({ name: "a", quiet: true });
    await using proxy = await startProxy(
      [
        "model_groups:",
        ...Array.from({ length: 6 }, (_, i) => [
          `  - model_group: g${i}`,
          "    models:",
          endpointYaml(sim.url, { name: `e${i}` }),
        ]).flat(),
        "general_settings:",
        `  redis_url: ${redis.url}`,
      ].join("\n") + "\n",
      { logLevel: "error" },
    );
    const timed = async (path: string) => {
      const started = Date.now();
      const response = await fetch(`${proxy.url}${path}`);
      const body = await response.json();
      return { ms: Date.now() - started, status: response.status, body };
    };
    assert.equal((await timed("/health?format=python")).body.status, "healthy");
    await redis.signal("SIGSTOP");
    try {
      // The first read after the hang is the one that could wait: the store marks Redis down after it.
      const python = await timed("/health?format=python");
      assert.equal(python.status, 200);
      assert.ok(python.ms < 200, `/health?format=python took ${python.ms} ms`);
      const native = await timed("/health");
      assert.equal(native.status, 200);
      assert.ok(native.ms < 200, `/health took ${native.ms} ms`);
    } finally {
      await redis.signal("SIGCONT");
    }
  },
});

test({
  name:
    "2,000 /health, 100 at a time, with 12 endpoints on Redis: a few hundred HMGETs, not one per endpoint per probe",
  ignore: !hasRedis,
  timeout: 40_000,
  async fn() {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({ name: "a", quiet: true });
    await using proxy = await startProxy(
      [
        "model_groups:",
        ...Array.from({ length: 6 }, (_, i) => [
          `  - model_group: g${i}`,
          "    models:",
          endpointYaml(sim.url, { name: `e${i}a` }),
          endpointYaml(sim.url, { name: `e${i}b` }),
        ]).flat(),
        "general_settings:",
        `  redis_url: ${redis.url}`,
      ].join("\n") + "\n",
      { logLevel: "error" },
    );
    const hmgets = async () =>
      Number(/cmdstat_hmget:calls=(\d+)/.exec(await redis.command("INFO", "commandstats") ?? "")?.[1] ?? 0);
    const before = await hmgets();
    for (let round = 0; round < 20; round++) {
      const answers = await Promise.all(Array.from({ length: 100 }, async () => {
        const response = await fetch(`${proxy.url}/health`);
        await response.body?.cancel();
        return response.status;
      }));
      assert.deepEqual(new Set(answers), new Set([200]));
    }
    // One read of the 12 endpoints per probe was 24,000 HMGETs (and 7.8 s for the flood).
    const sent = await hmgets() - before;
    assert.ok(sent <= 2_400, `${sent} HMGETs for 2,000 probes`);
  },
});
