/**
 * A lost Redis Cluster master costs little: three proxy instances under load from six clients, one of three
 * masters SIGKILLed (no replica, `cluster-require-full-coverage no`). Requests keep flowing (keys on the healthy
 * masters stay shared, the lost slots fall back to local state), none waits long, `/health` answers at once and
 * names the lost node, and once the node is back everything is shared again.
 */

import assert from "node:assert/strict";
import calculateSlot from "cluster-key-slot";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { hasRedis } from "../_support/redis.ts";
import { hasRedisCli, startCluster } from "../_support/redis_cluster.ts";
import { test } from "../_support/test.ts";

interface Sample {
  readonly at: number;
  readonly ms: number;
  readonly ok: boolean;
}

const ask = async (proxy: RunningProxy, content: string) => {
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }] }),
  });
  await response.text();
  return response;
};

/** Runs `clients` loops of requests over the instances until `stop()`; every request's time and outcome. */
function load(proxies: RunningProxy[], clients: number) {
  const samples: Sample[] = [];
  let running = true;
  let n = 0;
  const loops = Array.from({ length: clients }, async (_, c) => {
    const deadline = Date.now() + 20_000;
    while (running && Date.now() < deadline) {
      const started = performance.now();
      // Half repeat a small set (cache hits), half are new (misses: lock, budget, write).
      const content = n++ % 2 === 0 ? `hot ${n % 20}` : `cold ${c}-${n}`;
      const response = await ask(proxies[n % proxies.length], content);
      samples.push({ at: Date.now(), ms: performance.now() - started, ok: response.status === 200 });
    }
  });
  return {
    samples,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/**
 * This thread's milliseconds in the run queue so far: runnable, waiting for a core (Linux scheduler statistics; 0
 * where they are not readable). The instances, their clients and this test share the thread.
 */
function queuedMs(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[1]) / 1e6;
  } catch {
    return 0;
  }
}

const between = (samples: Sample[], from: number, to: number) =>
  samples.filter((sample) => sample.at >= from && sample.at < to);

async function health(proxy: RunningProxy) {
  const started = performance.now();
  const body = await (await fetch(`${proxy.url}/health`)).json();
  return { ms: performance.now() - started, body };
}

test({
  name:
    "a Redis Cluster master killed under load: throughput holds, no long waits, /health names it, state converges",
  ignore: !hasRedis || !hasRedisCli,
  timeout: 60_000,
  async fn() {
    await using cluster = await startCluster();
    const sims = await Promise.all(["a", "b", "c"].map((name) => SimUpstream.start({ name, quiet: true })));
    const proxies: RunningProxy[] = [];
    try {
      const yaml = groupYaml(
        sims.map((sim) => endpointYaml(sim.url, { name: sim.name, extra: "          rpm: 1000000" })),
        ["cache: true", "redis_cluster_nodes:", ...cluster.seeds.map((seed) => `  - ${seed}`)],
      );
      for (let i = 0; i < 3; i++) proxies.push(await startProxy(yaml, { logLevel: "info" }));
      // The master of endpoint a's health and budget keys goes; b and c live on the other two.
      const victim = (await cluster.masterOf(calculateSlot("a")))!;
      const victimName = `127.0.0.1:${victim.port}`;

      const running = load(proxies, 6);
      await delay(1500);
      const beforeAt = Date.now();
      const queuedBefore = queuedMs();
      await delay(1000);
      const killedAt = Date.now();
      const queuedAtKill = queuedMs();
      await victim.signal("SIGKILL");
      const polls: number[] = [];
      let named = false;
      while (Date.now() < killedAt + 2500) {
        const probe = await health(proxies[polls.length % 3]);
        polls.push(probe.ms);
        named ||= probe.body.store.nodes_down.includes(victimName);
        await delay(50);
      }
      const endedAt = Date.now();
      const queuedAtEnd = queuedMs();
      await running.stop();

      const before = between(running.samples, beforeAt, killedAt);
      const during = between(running.samples, killedAt, endedAt);
      const rate = (samples: Sample[], ms: number) => samples.length / (ms / 1000);
      // Requests per second of the time this thread could run: the wall time less its time in the run queue.
      // Other processes taking the cores (the suite, busy loops) leave it in the queue and lower the wall-time
      // rate in either window by whatever they took then (at load 12-14: during/before 0.24 to 7.96 in the same
      // run of the same code); a stall on the lost node leaves it idle, not queued, and still shows (0.02-0.05).
      const ran = (from: number, to: number, queued: number) => Math.max(1, to - from - queued);
      const ranBefore = ran(beforeAt, killedAt, queuedAtKill - queuedBefore);
      const ranDuring = ran(killedAt, endedAt, queuedAtEnd - queuedAtKill);
      const held = rate(during, ranDuring) / rate(before, ranBefore);
      const slowest = Math.max(...during.map((sample) => sample.ms));
      const figures = {
        before_per_s: Math.round(rate(before, killedAt - beforeAt)),
        during_per_s: Math.round(rate(during, endedAt - killedAt)),
        ran_before_ms: Math.round(ranBefore),
        ran_during_ms: Math.round(ranDuring),
        held: Number(held.toFixed(2)),
        slowest_during_ms: Math.round(slowest),
        slowest_before_ms: Math.round(Math.max(...before.map((sample) => sample.ms))),
        failed: during.filter((sample) => !sample.ok).length,
        health_polls: polls.length,
        median_health_ms: Math.round([...polls].sort((x, y) => x - y)[Math.floor(polls.length / 2)]),
        slowest_health_ms: Math.round(Math.max(...polls)),
      };
      console.log("lost master figures:", JSON.stringify(figures));
      if (Deno.env.get("DEBUG_CLUSTER")) {
        const buckets = [];
        for (let t = killedAt - 1000; t < killedAt + 2500; t += 250) {
          buckets.push(between(running.samples, t, t + 250).length);
        }
        console.log("per 250 ms:", buckets.join(" "));
        console.log(
          "slow:",
          during.filter((x) => x.ms > 250).map((x) => `${x.at - killedAt}:${Math.round(x.ms)}`).join(" "),
        );
        console.log(
          proxies[0].logs.filter((line) => /warn|info/.test(line) && /store|Redis/.test(line)).join("\n"),
        );
      }
      assert.equal(figures.failed, 0, "no request failed");
      const text = JSON.stringify(figures);
      // The figures hold on an idle machine (300 to 500 requests/s here before the kill). When other
      // tests saturate the 2 cores (under 200/s), the checks fall back to what still tells a working fallback
      // from a stall of seconds (what happened before: throughput near 0 for 10 s, requests of 5 s). Other tests
      // may also saturate the cores only once the master is down: a load average above the core count says so.
      const saturated = figures.before_per_s < 200 || Deno.loadavg()[0] > navigator.hardwareConcurrency;
      const sorted = [...polls].sort((x, y) => x - y);
      if (saturated) {
        console.log("machine saturated: the strict figures are not checked");
        assert.ok(held >= 0.3, `throughput held: ${text}`);
        assert.ok(slowest < figures.slowest_before_ms + 1500, `no long wait: ${text}`);
      } else {
        assert.ok(held >= 0.7, `throughput held: ${text}`);
        // 250 ms is the documented bound; the rest is margin for a loaded machine.
        assert.ok(slowest < 250 + figures.slowest_before_ms + 150, `no long wait: ${text}`);
        // /health waits at most 40 ms on Redis; one that waited on the lost node would take 250 ms or more.
        assert.ok(sorted[Math.floor(sorted.length / 2)] < 100, `/health within 100 ms: ${text}`);
        assert.ok(sorted[sorted.length - 1] < 400, `/health never hung: ${text}`);
      }
      assert.ok(named, "/health named the lost node");
      const degraded = await health(proxies[0]);
      assert.equal(degraded.body.store.status, "degraded");

      // The node comes back (empty, with its slots): every instance uses it again.
      await victim.start();
      await cluster.waitOk();
      const deadline = Date.now() + 10_000;
      let back = false;
      while (!back && Date.now() < deadline) {
        await Promise.all(proxies.map((proxy, i) => ask(proxy, `after ${i} ${Date.now()}`)));
        const views = await Promise.all(proxies.map(health));
        back = views.every((view) =>
          view.body.store.status === "ok" && view.body.store.nodes_down.length === 0
        );
        if (!back) await delay(100);
      }
      assert.ok(back, "every instance shares state again");
      // Cache entries are shared again, on all three masters (20 keys: all on two of them has odds 3e-4). A store
      // call slower than the 250 ms bound is served locally, so on a saturated machine a round may miss: new keys
      // are tried until one round is all shared.
      let hits: (string | null)[] = [];
      for (let round = 0; round < 10 && (round === 0 || hits.some((hit) => hit !== "HIT")); round++) {
        const prompts = Array.from({ length: 20 }, (_, i) => `converged ${round}-${i}`);
        await Promise.all(prompts.map((prompt) => ask(proxies[0], prompt)));
        await proxies[0].services.cache.settled();
        const again = await Promise.all(prompts.map((prompt) => ask(proxies[1], prompt)));
        hits = again.map((reply) => reply.headers.get("x-llmproxy-cache"));
      }
      assert.deepEqual(hits, Array(20).fill("HIT"));
    } finally {
      await Promise.all(proxies.map((proxy) => proxy.close()));
      await Promise.all(sims.map((sim) => sim.close()));
    }
  },
});
