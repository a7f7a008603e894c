/**
 * A Redis that hangs with its socket open (SIGSTOP here; in production a paused VM, or a partition that drops
 * packets, which TCP notices only after minutes): requests are served locally at once, but every command already
 * sent stays queued in the client until a reply. Commands kept being sent to the hung server (the coalescing locks'
 * owed releases, again every second; the usage stream, once per request), so the queue and the process's memory
 * grew for as long as the hang lasted. The connection is now dropped after 5 s without a byte while commands wait:
 * memory stays flat, and the store is shared again soon after Redis resumes.
 */

import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-team-a-7d21";
const MIB = 1024 * 1024;

test({
  name: "Redis hung for 10 s under load: memory stays flat (no command queue growing), shared again after",
  ignore: !hasRedis,
  timeout: 40_000,
  async fn() {
    v8.setFlagsFromString("--expose-gc");
    const gc: () => void = vm.runInNewContext("gc");
    const heap = () => {
      gc();
      return Deno.memoryUsage().heapUsed;
    };
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
        // Every request is a new answer, cached in local state while Redis hangs: bounded by max_entries (10,000
        // by default, ~5 MiB of heap here, which left the bound below no room), kept small so that what grows
        // with the hang is what the bound measures.
        "  cache_params: {max_entries: 500}",
        `  redis_url: ${redis.url}`,
        "  usage_stream: {enabled: true, stream_key: test-usage, max_len: 1000}",
        "keys:",
        `  - {name: team-a, key: ${KEY}, rpm: 1000000}`,
      ].join("\n") + "\n",
      { logLevel: "warn" },
    );
    let running = true;
    let sent = 0;
    const failed: string[] = [];
    const worker = async (w: number) => {
      for (let i = 0; running && i < 100_000; i++) {
        sent++;
        const response = await fetch(`${proxy.url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${KEY}` },
          body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: `${w} ${i}` }] }),
        });
        await response.body?.cancel();
        if (response.status !== 200) failed.push(String(response.status));
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(worker));
    try {
      await delay(500);
      await redis.signal("SIGSTOP");
      await delay(2000);
      const early = heap();
      const sentEarly = sent;
      await delay(8000);
      const late = heap();
      const grown = (late - early) / MIB;
      assert.ok(sent - sentEarly > 200, `requests kept flowing while Redis hung (${sent - sentEarly})`);
      assert.ok(
        grown < 8,
        `heap grew ${grown.toFixed(1)} MiB over 8 s of the hang (${sent - sentEarly} requests)`,
      );
      assert.ok(
        proxy.logs.some((line) => line.includes("Redis connection lost")),
        "the hung connection was dropped",
      );
      await redis.signal("SIGCONT");
      const resumed = Date.now();
      while ((await (await fetch(`${proxy.url}/health`)).json()).store.status !== "ok") {
        if (Date.now() - resumed > 8000) throw new Error("/health never said ok again");
        await delay(50);
      }
    } finally {
      await redis.signal("SIGCONT");
      running = false;
      await load;
    }
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${sent} failed`);
  },
});
