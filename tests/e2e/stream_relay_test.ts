/**
 * Streamed coalescing across instances: three proxy processes on one Redis (standalone, then a 3-master cluster)
 * and one simulated upstream that counts its calls. Identical streams over the three make one upstream call, each
 * client getting the whole stream; a slow reader holds up nobody; a leading instance killed mid-stream ends its
 * followers' streams with an error event within a bounded time.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, type ProxyProcess, startProxyProcess } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { hasRedisCli, startCluster } from "../_support/redis_cluster.ts";
import { test } from "../_support/test.ts";

/** Three proxy processes of one config (the Redis lines given), sharing a fresh namespace. */
async function trio(sim: SimUpstream, redis: string[], endpointExtra?: string) {
  const dir = await Deno.makeTempDir({ prefix: "llmproxy-relay-" });
  const config = `${dir}/llmproxy.yaml`;
  await Deno.writeTextFile(
    config,
    groupYaml([endpointYaml(sim.url, { name: "a", extra: endpointExtra })], [
      "cache: true",
      // The feature, not the wait bound: on a saturated machine a Redis call past the bound goes local.
      "redis_max_wait: 5",
      ...redis,
      "cache_params:",
      `  namespace: r${crypto.randomUUID().slice(0, 8)}`,
    ]),
  );
  const proxies: ProxyProcess[] = [];
  const close = async () => {
    await Promise.all(proxies.map((proxy) => proxy.stop("SIGKILL")));
    await Deno.remove(dir, { recursive: true });
  };
  try {
    for (let i = 0; i < 3; i++) proxies.push(await startProxyProcess(["--config", config, "--port", "0"]));
  } catch (error) {
    await close();
    throw error;
  }
  return { proxies, [Symbol.asyncDispose]: close };
}

const ask = (proxy: ProxyProcess, content: string) =>
  fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", stream: true, messages: [{ role: "user", content }] }),
  });

/** The whole stream of one request, with its cache verdict and how long it took from the send. */
async function streamed(proxy: ProxyProcess, content: string) {
  const started = performance.now();
  const response = await ask(proxy, content);
  const text = await response.text();
  return {
    status: response.status,
    cache: response.headers.get("x-llmproxy-cache"),
    text,
    ms: performance.now() - started,
  };
}

async function tenStreams(sim: SimUpstream, proxies: ProxyProcess[], content: string) {
  const before = sim.count();
  const answers = await Promise.all(
    Array.from({ length: 10 }, (_, i) => streamed(proxies[i % 3], content)),
  );
  assert.equal(sim.count() - before, 1, "one upstream call for 10 identical streams over 3 instances");
  assert.ok(answers.every((answer) => answer.status === 200));
  assert.ok(answers[0].text.endsWith("data: [DONE]\n\n"), answers[0].text.slice(-200));
  assert.ok(answers.every((answer) => answer.text === answers[0].text), "every client got the same stream");
  const verdicts = answers.map((answer) => answer.cache).sort();
  assert.deepEqual(verdicts, ["COALESCED", ...Array(8).fill("COALESCED"), "MISS"].sort());
}

/**
 * Waits until `sim` has had a call since it counted `before`: the request that leads a flight holds its coalescing
 * lock by the time it calls upstream, so one asked after this follows it. (A fixed pause lost that race on a
 * loaded machine: the other instance led instead.)
 */
async function upstreamCalled(sim: SimUpstream, before: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (sim.count() === before) {
    if (Date.now() > deadline) throw new Error("no upstream call within 10 s");
    await delay(10);
  }
}

/** A on its own first (it leads), then two clients on B once A's upstream call is under way; A killed mid-stream. */
async function killLeader(sim: SimUpstream, proxies: ProxyProcess[], content: string) {
  const [a, b] = proxies;
  const before = sim.count();
  const leader = ask(a, content).then((response) => response.body?.cancel()).catch(() => {});
  await upstreamCalled(sim, before);
  const followers = await Promise.all([ask(b, content), ask(b, content)]);
  const readers = followers.map((response) => response.body!.getReader());
  const decoder = new TextDecoder();
  const texts = await Promise.all(readers.map(async (reader) => decoder.decode((await reader.read()).value)));
  assert.ok(texts.every((text) => text.startsWith("data: ")), "followers were streaming before the kill");
  await a.stop("SIGKILL");
  const killedAt = performance.now();
  const rest = await Promise.all(readers.map(async (reader) => {
    let text = "";
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      text += decoder.decode(chunk.value, { stream: true });
    }
    return { text, ms: performance.now() - killedAt };
  }));
  await leader;
  for (const { text, ms } of rest) {
    assert.match(
      text,
      /"code":"coalesced_stream_lost"/,
      `an error event ends the stream: ${text.slice(-300)}`,
    );
    assert.ok(!text.includes("[DONE]"));
    // SILENCE_MS (5 s) without a word from the relay, plus margin for a loaded machine.
    assert.ok(ms < 9000, `ended ${Math.round(ms)} ms after the kill`);
  }
  assert.equal(sim.count() - before, 1, "B made no upstream call of its own");
  return rest.map((r) => Math.round(r.ms));
}

/**
 * The leader killed while its upstream call has not answered yet: the follower does not wait out the lock (up to
 * 30 s), it goes upstream itself once the leader's `pending` lapses, and its client gets the whole stream.
 */
async function killLeaderEarly(sim: SimUpstream, leader: ProxyProcess, follower: ProxyProcess) {
  const before = sim.count();
  sim.latencyMs = 1500;
  try {
    const content = "leader killed before its first byte";
    const first = ask(leader, content).then((response) => response.body?.cancel()).catch(() => {});
    await upstreamCalled(sim, before);
    const started = performance.now();
    const second = streamed(follower, content);
    await delay(300);
    await leader.stop("SIGKILL");
    await first;
    const { status, text, cache } = await second;
    const ms = performance.now() - started;
    assert.equal(status, 200);
    assert.ok(text.endsWith("data: [DONE]\n\n"), text.slice(-200));
    assert.equal(cache, "MISS", "the follower made the call itself");
    assert.equal(sim.count() - before, 2);
    // PENDING_MS (1.5 s) + its own upstream call (1.5 s + the stream), far below the lock's 30 s.
    assert.ok(ms < 10_000, `answered ${Math.round(ms)} ms after it was sent`);
  } finally {
    sim.latencyMs = 200;
  }
}

test({
  name:
    "streams coalesce across 3 instances on standalone Redis: one upstream call, slow readers, a killed leader",
  ignore: !hasRedis,
  timeout: 90_000,
  async fn(t) {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({
      name: "a",
      quiet: true,
      latencyMs: 200,
      chunks: 40,
      chunkDelayMs: 25,
    });
    await using three = await trio(sim, [`redis_url: ${redis.url}`]);
    const { proxies } = three;

    await t.step(
      "10 identical streams over 3 instances make 1 upstream call, every client the whole stream",
      () => tenStreams(sim, proxies, "ten streams"),
    );

    await t.step(
      "a reader on B that reads nothing holds up neither A's client nor another on B",
      async () => {
        const [a, b] = proxies;
        const content = "one slow reader";
        const before = sim.count();
        const leader = streamed(a, content);
        await upstreamCalled(sim, before);
        const slow = await ask(b, content);
        const others = await Promise.all([leader, streamed(b, content)]);
        // The stream takes ~1.2 s upstream (40 chunks, 25 ms apart, after 200 ms).
        for (const other of others) assert.ok(other.ms < 4000, `done in ${Math.round(other.ms)} ms`);
        assert.equal(others[1].cache, "COALESCED");
        await delay(200);
        assert.equal(await slow.text(), others[0].text, "the slow reader still gets the whole stream");
      },
    );

    await t.step(
      "C killed before its upstream answered: B goes upstream itself, without waiting out the lock",
      () => killLeaderEarly(sim, proxies[2], proxies[1]),
    );

    await t.step(
      "A killed mid-stream: B's clients get an error event, then the end of the stream",
      async () => {
        sim.chunks = 200;
        sim.chunkDelayMs = 50;
        await killLeader(sim, proxies, "killed leader");
      },
    );
  },
});

test({
  name:
    "streams coalesce across 3 instances on a 3-master Redis Cluster, and a killed leader ends them cleanly",
  ignore: !hasRedis || !hasRedisCli,
  timeout: 90_000,
  async fn(t) {
    await using cluster = await startCluster();
    await using sim = await SimUpstream.start({
      name: "a",
      quiet: true,
      latencyMs: 200,
      chunks: 40,
      chunkDelayMs: 25,
    });
    // A lock of 2 s (`http_timeout`; the endpoint's own timeout lets its streams run longer).
    const redis = ["http_timeout: 2", "redis_cluster_nodes:", ...cluster.seeds.map((seed) => `  - ${seed}`)];
    await using three = await trio(sim, redis, "          timeout: 30");
    const { proxies } = three;
    // Prompts whose keys land on different masters.
    for (const content of ["cluster one", "cluster two", "cluster three"]) {
      await t.step(
        `10 identical streams over 3 instances: 1 upstream call (${content})`,
        () => tenStreams(sim, proxies, content),
      );
    }
    await t.step(
      "a stream longer than the lock's TTL is still followed: B asks 3 s into a 4 s stream",
      async () => {
        const before = sim.count();
        sim.chunks = 80;
        sim.chunkDelayMs = 50;
        const content = "longer than the lock";
        const [a, b] = proxies;
        const leader = streamed(a, content);
        await delay(3000);
        const follower = await streamed(b, content);
        assert.equal(follower.cache, "COALESCED");
        assert.equal(follower.text, (await leader).text);
        assert.equal(sim.count() - before, 1);
      },
    );

    await t.step("A killed mid-stream: B's clients get an error event", async () => {
      sim.chunks = 200;
      sim.chunkDelayMs = 50;
      await killLeader(sim, proxies, "cluster killed leader");
    });
  },
});
