/**
 * Coalescing: identical requests in flight together cause one upstream call, in one process and across two
 * instances on one Redis. Streamed followers get what was already sent, then the live tail, each at its own
 * pace.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream, type SimUpstreamOptions } from "../../src/sim/upstream.ts";
import {
  cachedProxy,
  delay,
  endpointYaml,
  groupYaml,
  type RunningProxy,
  startProxy,
} from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const body = (content: string, stream = false) =>
  JSON.stringify({ model: "gpt-test", stream, messages: [{ role: "user", content }] });

const send = (proxy: RunningProxy, content: string, stream = false) =>
  fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body: body(content, stream) });

async function answer(proxy: RunningProxy, content: string, stream = false) {
  const response = await send(proxy, content, stream);
  return {
    status: response.status,
    cache: response.headers.get("x-llmproxy-cache"),
    text: await response.text(),
  };
}

const tally = (values: (string | null)[]) => {
  const counts: Record<string, number> = {};
  for (const value of values) counts[String(value)] = (counts[String(value)] ?? 0) + 1;
  return counts;
};

function setup(sim: SimUpstreamOptions, settings: string[] = []) {
  return cachedProxy(settings, sim);
}

test("20 identical JSON requests at once: one upstream call, 20 identical answers", async () => {
  await using s = await setup({ latencyMs: 250 });
  const answers = await Promise.all(Array.from({ length: 20 }, () => answer(s.proxy, "together")));
  assert.equal(s.sim.count(), 1);
  assert.ok(answers.every((a) => a.status === 200 && a.text === answers[0].text));
  assert.deepEqual(tally(answers.map((a) => a.cache)), { MISS: 1, COALESCED: 19 });
  const stats = await (await fetch(`${s.proxy.url}/stats`)).json();
  assert.equal(stats.cache.coalesced, 19);
});

test({
  name:
    "on Redis too: 20 identical JSON requests at once on one instance make one upstream call, and no lock stays",
  ignore: !hasRedis,
  fn: async () => {
    await using redis = await startRedis();
    await using s = await setup({ latencyMs: 250 }, [`redis_url: ${redis.url}`]);
    const answers = await Promise.all(Array.from({ length: 20 }, () => answer(s.proxy, "together on redis")));
    assert.equal(s.sim.count(), 1);
    assert.ok(answers.every((a) => a.status === 200 && a.text === answers[0].text));
    assert.deepEqual(tally(answers.map((a) => a.cache)), { MISS: 1, COALESCED: 19 });
    await s.proxy.services.cache.settled();
    assert.equal(await redis.command("EVAL", "return #redis.call('KEYS', '*coalesce*')", "0"), "0");
  },
});

test("coalesced, cached and fresh answers each carry their own client's request id", async () => {
  await using s = await setup({ latencyMs: 200 });
  const ask = (id: string, stream = false) =>
    fetch(`${s.proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "x-request-id": id },
      body: body("whose id", stream),
    });
  for (const stream of [false, true]) {
    const together = await Promise.all(
      ["lead", "follow-1", "follow-2"].map((id) => ask(`${id}-${stream}`, stream)),
    );
    for (const [i, response] of together.entries()) {
      await response.text();
      assert.equal(response.headers.get("x-request-id"), `${["lead", "follow-1", "follow-2"][i]}-${stream}`);
    }
    assert.deepEqual(tally(together.map((r) => r.headers.get("x-llmproxy-cache"))), {
      MISS: 1,
      COALESCED: 2,
    });
    await s.proxy.services.cache.settled();
    const hit = await ask(`later-${stream}`, stream);
    await hit.text();
    assert.equal(hit.headers.get("x-llmproxy-cache"), "HIT");
    assert.equal(hit.headers.get("x-request-id"), `later-${stream}`);
  }
});

test("20 identical streams at once: one upstream call; late joiners and a slow leader lose nothing", async () => {
  await using s = await setup({ latencyMs: 50, chunks: 8, chunkDelayMs: 40 });
  const { proxy, sim } = s;
  // The leader reads nothing until every follower has read its whole stream.
  const leader = await send(proxy, "stream together", true);
  let othersDone = false;
  const read = async (index: number) => {
    if (index >= 10) await delay(20 + index * 5); // these join mid-stream
    const response = await send(proxy, "stream together", true);
    return { cache: response.headers.get("x-llmproxy-cache"), text: await response.text() };
  };
  const others = Promise.all(Array.from({ length: 19 }, (_, i) => read(i + 1))).finally(() =>
    othersDone = true
  );
  await Promise.race([others, delay(5000)]);
  assert.ok(othersDone, "the followers finished while the leader had not read a byte");
  const streams = [
    { cache: leader.headers.get("x-llmproxy-cache"), text: await leader.text() },
    ...await others,
  ];
  assert.equal(sim.count(), 1);
  assert.ok(streams[0].text.endsWith("data: [DONE]\n\n"));
  assert.ok(streams.every((stream) => stream.text === streams[0].text), "byte-identical");
  assert.deepEqual(tally(streams.map((stream) => stream.cache)), { MISS: 1, COALESCED: 19 });

  await proxy.services.cache.settled();
  const hit = await answer(proxy, "stream together", true);
  assert.equal(hit.cache, "HIT");
  assert.equal(hit.text, streams[0].text);
});

test("the SDK iterates a coalesced stream like the original", async () => {
  await using s = await setup({ latencyMs: 80, chunkDelayMs: 10 });
  const client = new OpenAI({ baseURL: `${s.proxy.url}/v1`, apiKey: "x", maxRetries: 0 });
  const read = async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-test",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "sdk together" }],
    });
    const chunks: unknown[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    return chunks;
  };
  const [a, b, c] = await Promise.all([read(), read(), read()]);
  assert.equal(s.sim.count(), 1);
  assert.deepEqual(b, a);
  assert.deepEqual(c, a);
});

test("the leader's client leaving mid-stream does not cut its followers, and the answer is stored", async () => {
  await using s = await setup({ chunks: 8, chunkDelayMs: 25 });
  const { proxy, sim } = s;
  const leader = await send(proxy, "leader leaves", true);
  const reader = leader.body!.getReader();
  await reader.read();
  const follower = send(proxy, "leader leaves", true);
  while (proxy.services.cache.counters.coalesced === 0) await delay(5); // the follower has joined
  await reader.cancel();
  const followed = await follower;
  assert.equal(followed.headers.get("x-llmproxy-cache"), "COALESCED");
  const text = await followed.text();
  assert.ok(text.endsWith("data: [DONE]\n\n"));
  await proxy.services.cache.settled();
  const hit = await answer(proxy, "leader leaves", true);
  assert.equal(hit.cache, "HIT");
  assert.equal(hit.text, text);
  assert.equal(sim.count(), 1);
});

test("a JSON flight's upstream call is cancelled once every client following it left, not when its leader did", async () => {
  // An upstream that holds each call until it is released or the proxy gives it up (closes the connection).
  let calls = 0;
  let cancelled = 0;
  let release = () => {};
  const released = new Promise<void>((resolve) => release = resolve);
  await using upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      calls++;
      await request.text();
      const gone = new Promise<"gone">((resolve) =>
        request.signal.addEventListener("abort", () => resolve("gone"))
      );
      if (await Promise.race([released.then(() => "answer" as const), gone]) === "gone") {
        cancelled++;
        return new Response(null, { status: 499 });
      }
      return Response.json({
        id: "chatcmpl-held",
        object: "chat.completion",
        created: 1,
        model: "upstream-model",
        choices: [{ index: 0, message: { role: "assistant", content: "held" }, finish_reason: "stop" }],
      });
    },
  );
  const proxy = await startProxy(
    groupYaml([endpointYaml(`http://127.0.0.1:${upstream.addr.port}`, { name: "a" })], ["cache: true"]),
  );
  try {
    const ask = (signal: AbortSignal) =>
      fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body: body("held"), signal }).catch(() =>
        null
      );
    const leader = new AbortController();
    const follower = new AbortController();
    const asked = [ask(leader.signal)];
    while (calls === 0) await delay(5);
    asked.push(ask(follower.signal));
    // Both in flight (the scrape itself is the third), then a margin for the follower to join the flight.
    const inFlight = async () => {
      const text = await (await fetch(`${proxy.url}/metrics`)).text();
      return Number(/^llmproxy_requests_in_flight (\d+)$/m.exec(text)?.[1] ?? 0);
    };
    while (await inFlight() < 3) await delay(10);
    await delay(200);
    leader.abort();
    await delay(300);
    assert.equal(cancelled, 0, "the follower still waits for the answer");
    follower.abort();
    const until = Date.now() + 5_000;
    while (cancelled === 0 && Date.now() < until) await delay(10);
    assert.equal(cancelled, 1, "with no one left, the upstream call was given up");
    await Promise.all(asked);
    // The flight closed: the same request goes upstream again and is answered.
    release();
    const again = await answer(proxy, "held");
    assert.equal(again.status, 200);
    assert.equal(again.cache, "MISS");
    assert.equal(calls, 2);
  } finally {
    release();
    await proxy.close();
  }
});

test("when the leader fails, its followers are not left hanging: they retry (and coalesce again)", async () => {
  await using s = await setup({ latencyMs: 150 });
  const { proxy, sim } = s;
  for (const stream of [false, true]) {
    sim.reset();
    sim.next({ kind: "status", status: 400 });
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => answer(proxy, `fails first ${stream}`, stream)),
    );
    assert.deepEqual(tally(answers.map((a) => String(a.status))), { 400: 1, 200: 4 });
    assert.equal(sim.count(), 2, "the retries coalesced into one call");
    const good = answers.filter((a) => a.status === 200);
    assert.ok(good.every((a) => a.text === good[0].text));
    assert.deepEqual(tally(answers.map((a) => a.cache)), { MISS: 2, COALESCED: 3 });
  }
});

test({
  name:
    "two instances on one Redis: a JSON request on B waits for A's identical one instead of going upstream",
  ignore: !hasRedis,
  fn: async () => {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({ name: "a", quiet: true, latencyMs: 300, chunkDelayMs: 10 });
    const yaml = groupYaml([endpointYaml(sim.url, { name: "a" })], [
      "cache: true",
      `redis_url: ${redis.url}`,
    ]);
    await using a = await startProxy(yaml);
    await using b = await startProxy(yaml);
    {
      const calls = sim.count();
      const first = answer(a, "across", false);
      while (sim.count() === calls) await delay(5); // A holds the lock and is upstream
      const second = await answer(b, "across", false);
      const [one, two] = [await first, second];
      assert.equal(sim.count(), calls + 1, "one upstream call for both instances");
      assert.equal(one.cache, "MISS");
      assert.equal(two.cache, "COALESCED");
      assert.equal(two.text, one.text);
    }
    {
      // A stream does not wait for another instance's stream to end: B follows A's live, through Redis.
      const calls = sim.count();
      const first = answer(a, "across streamed", true);
      while (sim.count() === calls) await delay(5);
      const second = await answer(b, "across streamed", true);
      assert.equal(sim.count(), calls + 1);
      assert.equal(second.cache, "COALESCED");
      assert.equal(second.text, (await first).text);
    }

    // A's leader fails: B stops waiting when A's lock goes, and goes upstream itself.
    sim.next({ kind: "status", status: 400 });
    const calls = sim.count();
    const failing = answer(a, "across, failing");
    while (sim.count() === calls) await delay(5);
    const own = await answer(b, "across, failing");
    assert.equal((await failing).status, 400);
    assert.equal(own.status, 200);
    assert.equal(own.cache, "MISS");

    // Every lock taken on the way (with the entry read, or after waiting) was given back.
    await a.services.cache.settled();
    await b.services.cache.settled();
    assert.equal(await redis.command("EVAL", "return #redis.call('KEYS', '*coalesce*')", "0"), "0");
    assert.notEqual(await redis.command("EVAL", "return #redis.call('KEYS', '*cache:{*')", "0"), "0");
  },
});
