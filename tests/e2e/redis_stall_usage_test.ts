/**
 * Usage tallies through a Redis that stalls and comes back (SIGSTOP, then SIGCONT): ~400 ms, ~1.5 s and ~5 s (long
 * enough for the proxy to drop the connection and reconnect). Requests go on all along; afterwards `/stats` and
 * `/admin/usage` count every one of them, once. What was counted on local state while the node was left alone
 * is sent to Redis once it answers again (it was lost before: only this instance's local figures had it).
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-team-a-stall-usage-5c1";
const ADMIN = "sk-admin-stall-usage-9d3";

for (const stallMs of [400, 1500, 5000]) {
  test({
    name: `Redis stalled ${stallMs} ms then back: /stats and /admin/usage count every request made, once`,
    ignore: !hasRedis,
    timeout: 60_000,
    async fn() {
      await using redis = await startRedis();
      await using sim = await SimUpstream.start({ name: "east", quiet: true, record: false });
      await using proxy = await startProxy(
        [
          "model_groups:",
          "  - model_group: gpt-test",
          "    models:",
          endpointYaml(sim.url, { name: "east" }),
          "general_settings:",
          `  redis_url: ${redis.url}`,
          `  admin_keys: [${ADMIN}]`,
          "keys:",
          `  - {name: team-a, key: ${KEY}, rpm: 1000000}`,
        ].join("\n") + "\n",
        { logLevel: "warn" },
      );
      let made = 0;
      const chat = async () => {
        const response = await fetch(`${proxy.url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${KEY}` },
          body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
        });
        await response.body?.cancel();
        assert.equal(response.status, 200);
        made++;
      };
      const admin = async (path: string) => {
        const response = await fetch(`${proxy.url}${path}`, {
          headers: { authorization: `Bearer ${ADMIN}` },
        });
        assert.equal(response.status, 200);
        return await response.json();
      };
      const usage = async () => {
        const rows: { key: string; requests: number }[] = (await admin("/admin/usage")).data;
        return rows.filter((row) => row.key === "team-a").reduce((sum, row) => sum + row.requests, 0);
      };
      // Requests two at a time all along: before, during and after the stall.
      let running = true;
      const load = Promise.all([0, 1].map(async () => {
        while (running) {
          await chat();
          await delay(20);
        }
      }));
      try {
        await delay(600);
        await redis.signal("SIGSTOP");
        try {
          await delay(stallMs);
        } finally {
          await redis.signal("SIGCONT");
        }
        await delay(1500);
      } finally {
        running = false;
        await load;
      }
      const resumed = Date.now();
      while ((await admin("/stats")).store.status !== "ok") {
        assert.ok(Date.now() - resumed < 8000, "the store never said ok again");
        await delay(50);
      }
      // Counted in Redis, by another instance too: nothing this one counted alone during the stall is missing.
      let counted = await usage();
      for (let i = 0; i < 40 && counted !== made; i++) counted = await delay(50).then(usage);
      assert.equal(counted, made, `/admin/usage after a ${stallMs} ms stall`);
      assert.equal((await admin("/stats")).usage_today["team-a"].requests, made, "/stats");
      await using other = await startProxy(
        [
          "model_groups:",
          "  - model_group: gpt-test",
          "    models:",
          endpointYaml(sim.url, { name: "east" }),
          "general_settings:",
          `  redis_url: ${redis.url}`,
          `  admin_keys: [${ADMIN}]`,
        ].join("\n") + "\n",
        { logLevel: "warn" },
      );
      const seen = await fetch(`${other.url}/stats`, { headers: { authorization: `Bearer ${ADMIN}` } });
      assert.equal((await seen.json()).usage_today["team-a"].requests, made, "/stats of another instance");
    },
  });
}
