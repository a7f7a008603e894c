/**
 * With `usage_stream` on, every finished request appends an entry to a Redis Stream, off the response path. On a
 * Redis that hangs with its socket open (SIGSTOP), the answers never waited on those appends, but each append
 * failed after the command timeout with one warning per request, and `/stats` waited ~1-2 s: for those appends
 * (its usage figures waited for every usage write of this instance) and for a SCAN of the hung server (its cache
 * figures). Now a run of failed appends is one warning, the usage figures wait only for the tallies they read, and
 * the cache figures are local while the store is degraded. Appends resume once Redis answers again.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-team-a-usage-hang-2f9";
const ADMIN = "sk-admin-usage-hang-8e4";

test({
  name:
    "Redis hung: /stats and /admin/usage do not wait on usage stream appends; one warning for their failures",
  ignore: !hasRedis,
  timeout: 30_000,
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
        "  cache: true",
        `  redis_url: ${redis.url}`,
        `  admin_keys: [${ADMIN}]`,
        "  usage_stream: {enabled: true, stream_key: hung-usage, max_len: 1000}",
        "keys:",
        `  - {name: team-a, key: ${KEY}, rpm: 1000000}`,
      ].join("\n") + "\n",
      { logLevel: "warn" },
    );
    const chat = async (content: string) => {
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}` },
        body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }] }),
      });
      await response.body?.cancel();
      return response.status;
    };
    const timed = async (path: string) => {
      const started = performance.now();
      const response = await fetch(`${proxy.url}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
      const body = await response.json();
      return { status: response.status, body, ms: performance.now() - started };
    };
    const appended = async () => Number(await redis.command("XLEN", "hung-usage"));
    const failures = () => proxy.logs.filter((line) => line.includes("usage stream append failed")).length;

    assert.equal(await chat("before"), 200);
    await proxy.services.usage.settled();
    assert.equal(await appended(), 1);

    await redis.signal("SIGSTOP");
    try {
      for (let i = 0; i < 10; i++) assert.equal(await chat(`hung ${i}`), 200);
      const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => chat(`hung many ${i}`)));
      assert.deepEqual(statuses.filter((status) => status !== 200), []);
      // Right after the burst: the figures do not wait for its appends (each would wait out the command timeout).
      const stats = await timed("/stats");
      assert.equal(stats.status, 200);
      assert.equal(stats.body.store.status, "degraded");
      const usage = await timed("/admin/usage");
      assert.equal(usage.status, 200);
      assert.ok(
        stats.ms < 900 && usage.ms < 900,
        `/stats ${stats.ms.toFixed(0)} ms, usage ${usage.ms.toFixed(0)} ms`,
      );
      // The appends fail once their command timeout passes (1 s, up to 2 s when pipelined): one warning.
      await delay(2000);
      assert.ok(failures() <= 1, `${failures()} usage stream warnings for 30 requests`);
    } finally {
      await redis.signal("SIGCONT");
    }

    // Shared again: the entries of the hang (sent to the hung server, which runs them as it resumes, or kept and
    // appended once it answers) and the next request's are all appended, once.
    const resumed = Date.now();
    while ((await timed("/stats")).body.store.status !== "ok") {
      if (Date.now() - resumed > 8000) throw new Error("the store never said ok again");
      await delay(50);
    }
    assert.equal(await chat("after"), 200);
    await proxy.services.usage.settled();
    let count = await appended();
    for (let i = 0; i < 60 && count < 32; i++) count = await delay(50).then(appended);
    assert.equal(count, 32, "1 entry before, 30 during the hang, 1 after");
  },
});
