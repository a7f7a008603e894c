/**
 * Endpoint health on Redis without a round trip in front of each request: an instance picks endpoints from its own
 * copy of their health (`store/health_mirror.ts`). Its own cooldowns apply to its next request at once; another
 * instance's reach it through the `health` channel and one read; a write nobody announced (an older instance)
 * within `REFRESH_MS`. On a standalone Redis (through a slow link, so that a round trip shows in the timings) and
 * on a Redis Cluster. With the cache off, a request sends Redis nothing (counted with `MONITOR`): the copy's
 * refresh reads each endpoint once a second, whatever the traffic.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { REFRESH_MS } from "../../src/store/health_mirror.ts";
import { delay, endpointYaml, groupYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { hasRedisCli, startCluster } from "../_support/redis_cluster.ts";
import { monitor } from "../_support/redis_monitor.ts";
import { slowLink } from "../_support/slow_link.ts";
import { test } from "../_support/test.ts";

const ROUND_TRIP_MS = 300;

/** One chat request: its status, the endpoint that served it, and how long it took. */
async function chat(proxy: RunningProxy) {
  const started = performance.now();
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "x" }] }),
  });
  await response.body?.cancel();
  return {
    status: response.status,
    endpoint: response.headers.get("x-llmproxy-endpoint"),
    ms: performance.now() - started,
  };
}

async function twoSims() {
  const a = await SimUpstream.start({ name: "a", quiet: true });
  const b = await SimUpstream.start({ name: "b", quiet: true });
  return {
    a,
    b,
    endpoints: [endpointYaml(a.url, { name: "a" }), endpointYaml(b.url, { name: "b" })],
    [Symbol.asyncDispose]: async () => void await Promise.all([a.close(), b.close()]),
  };
}

/** Sends requests to `proxy` until endpoint `a` answered one more (bounded); true when it did. */
async function untilServedBy(proxy: RunningProxy, sim: SimUpstream, tries = 4): Promise<boolean> {
  const before = sim.count();
  for (let i = 0; i < tries && sim.count() === before; i++) await chat(proxy);
  return sim.count() > before;
}

test({
  name:
    "over a 300 ms Redis link: no round trip before the pick; B's 429 cooldown reaches A, A's own is at once",
  ignore: !hasRedis,
  timeout: 40_000,
  fn: async () => {
    await using redis = await startRedis();
    await using link = slowLink(redis.port, ROUND_TRIP_MS);
    await using sims = await twoSims();
    const { a, b } = sims;
    // A reaches Redis through the link (and waits for it rather than serving local state); B directly.
    await using first = await startProxy(
      groupYaml(sims.endpoints, [`redis_url: redis://127.0.0.1:${link.port}`, "redis_max_wait: 5"]),
    );
    await using second = await startProxy(groupYaml(sims.endpoints, [`redis_url: ${redis.url}`]));

    // The first request reads the group's health; the next ones pick from A's copy.
    for (let i = 0; i < 2; i++) assert.equal((await chat(first)).status, 200);
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      const answer = await chat(first);
      assert.equal(answer.status, 200);
      times.push(answer.ms);
    }
    times.sort((x, y) => x - y);
    assert.ok(
      times[1] < ROUND_TRIP_MS / 2,
      `no Redis round trip before the pick: ${times.map(Math.round)} ms`,
    );

    // A's subscription to the health channel went through the link too (connect, ready check, SUBSCRIBE).
    await delay(4 * ROUND_TRIP_MS);
    // B gets a 429 from `a` (retry-after 30 s): B cools it down, and announces it.
    a.next({ kind: "status", status: 429, headers: { "retry-after": "30" } });
    assert.ok(await untilServedBy(second, a), "B sent a request to a");
    // A reads `a` again once told: one read over the link, well within REFRESH_MS.
    await delay(2 * ROUND_TRIP_MS + 100);
    const sentToA = a.count();
    for (let i = 0; i < 4; i++) {
      const answer = await chat(first);
      assert.equal(answer.status, 200);
      assert.equal(answer.endpoint, "b", `request ${i} after B's cooldown of a`);
    }
    assert.equal(a.count(), sentToA, "A sent nothing to a while B's cooldown runs");

    // A's own 429 from `b`: its next request, sent at once, does not go to b (every endpoint cools down).
    b.next({ kind: "status", status: 429, headers: { "retry-after": "30" } });
    const limited = await chat(first);
    assert.notEqual(limited.status, 200);
    const sentToB = b.count();
    const next = await chat(first);
    assert.equal(b.count(), sentToB, `A's next request went to b (status ${next.status})`);
    assert.equal(next.status, 429);
  },
});

test({
  name: `a cooldown written without an announcement (an older instance) is followed within ${REFRESH_MS} ms`,
  ignore: !hasRedis,
  fn: async () => {
    await using redis = await startRedis();
    await using sims = await twoSims();
    const { a } = sims;
    await using proxy = await startProxy(groupYaml(sims.endpoints, [`redis_url: ${redis.url}`]));
    for (let i = 0; i < 2; i++) assert.equal((await chat(proxy)).status, 200);
    const written = performance.now();
    const until = String(Date.now() + 30_000);
    const reply = await redis.command("HSET", "llmproxy:{a}:health", "failures", "0", "until", until);
    assert.equal(reply, "2");
    let lastToA = -1;
    let inARow = 0;
    // Bounded: at most 3 s of requests, spaced 50 ms apart.
    while (inARow < 6 && performance.now() - written < 3_000) {
      const answer = await chat(proxy);
      assert.equal(answer.status, 200);
      if (answer.endpoint === "a") {
        lastToA = performance.now() - written;
        inARow = 0;
      } else inARow++;
      await delay(50);
    }
    assert.equal(inARow, 6, `requests still went to a ${Math.round(lastToA)} ms after the write`);
    assert.ok(lastToA < REFRESH_MS + 500, `last request to a ${Math.round(lastToA)} ms after the write`);
    assert.ok(a.count() > 0);
  },
});

/** Two proxies of `yaml`: B cools `a` down with a 429; how long until A's copy of `a`'s health holds it. */
async function announced(yaml: string, a: SimUpstream): Promise<number> {
  await using first = await startProxy(yaml);
  await using second = await startProxy(yaml);
  for (let i = 0; i < 2; i++) assert.equal((await chat(first)).status, 200);
  // A's subscription is made with its first read: give it time to be on (a refresh then finds nothing new).
  await delay(300);
  a.next({ kind: "status", status: 429, headers: { "retry-after": "30" } });
  assert.ok(await untilServedBy(second, a), "B sent a request to a");
  const cooled = performance.now();
  const told = () => (first.services.store.readHealthNow?.(["a"])?.[0].cooldownUntil ?? 0) > Date.now();
  for (let i = 0; i < 400 && !told(); i++) await delay(5);
  const ms = performance.now() - cooled;
  const sentToA = a.count();
  for (let i = 0; i < 4; i++) assert.equal((await chat(first)).endpoint, "b", `request ${i} on A`);
  assert.equal(a.count(), sentToA);
  return ms;
}

// Through the channel: a message and one read, a few ms. Without it the refresh would find it after 500 ms on
// average (anywhere up to REFRESH_MS): 150 ms fails that 85% of the time.
test({
  name: "standalone: B's 429 cooldown reaches A through the health channel, well before a refresh",
  ignore: !hasRedis,
  fn: async () => {
    await using redis = await startRedis();
    await using sims = await twoSims();
    const ms = await announced(groupYaml(sims.endpoints, [`redis_url: ${redis.url}`]), sims.a);
    assert.ok(ms < 150, `A's copy held B's cooldown ${Math.round(ms)} ms after B's 429`);
  },
});

test({
  name: "on a Redis Cluster: B's 429 cooldown reaches A through the health channel",
  ignore: !hasRedis || !hasRedisCli,
  timeout: 40_000,
  fn: async () => {
    await using cluster = await startCluster();
    await using sims = await twoSims();
    const seeds = ["redis_cluster_nodes:", ...cluster.seeds.map((seed) => `  - ${seed}`)];
    const ms = await announced(groupYaml(sims.endpoints, seeds), sims.a);
    assert.ok(ms < 150, `A's copy held B's cooldown ${Math.round(ms)} ms after B's 429`);
  },
});

test({
  name: "the cache off: requests send Redis nothing; the copy reads each endpoint about once a second",
  ignore: !hasRedis,
  fn: async () => {
    await using redis = await startRedis();
    await using sims = await twoSims();
    await using proxy = await startProxy(groupYaml(sims.endpoints, [`redis_url: ${redis.url}`]));
    for (let i = 0; i < 2; i++) assert.equal((await chat(proxy)).status, 200);
    await using watch = await monitor(redis.port);
    const started = performance.now();
    for (let i = 0; i < 40; i++) assert.equal((await chat(proxy)).status, 200);
    const seconds = (performance.now() - started) / 1000;
    const sent = watch.lines();
    // Two endpoints, read again each REFRESH_MS (one more period for the one under way); before: two a request.
    const most = 2 * (Math.ceil((seconds * 1000) / REFRESH_MS) + 1);
    assert.ok(
      sent.length <= most,
      `${sent.length} commands in ${seconds.toFixed(1)} s of 40 requests:\n${sent}`,
    );
    assert.ok(sent.every((line) => line.includes(":health")), `only health reads:\n${sent.join("\n")}`);
  },
});
