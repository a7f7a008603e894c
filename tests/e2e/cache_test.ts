/**
 * The answer cache end to end: HIT/MISS/BYPASS, byte-identical replays (JSON and streams, read by the openai
 * SDK), nothing incomplete ever stored, per-request controls, `cache: false`, `DELETE /cache`, and cache
 * writes that fail without the client noticing. Coalescing is in cache_coalesce_test.ts.
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

const PATHS = { chat: "/v1/chat/completions", responses: "/v1/responses", embeddings: "/v1/embeddings" };

interface Answer {
  readonly status: number;
  readonly cache: string | null;
  readonly headers: Headers;
  readonly text: string;
}

async function post(
  proxy: RunningProxy,
  route: keyof typeof PATHS,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(`${proxy.url}${PATHS[route]}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    cache: response.headers.get("x-llmproxy-cache"),
    headers: response.headers,
    text,
  };
}

const chatBody = (content = "hello", extra: Record<string, unknown> = {}) => ({
  model: "gpt-test",
  messages: [{ role: "user", content }],
  ...extra,
});

async function cacheStats(proxy: RunningProxy) {
  await proxy.services.cache.settled();
  const stats = await (await fetch(`${proxy.url}/stats`)).json();
  return stats.cache as Record<string, number | boolean | null>;
}

function setup(settings: string[] = [], sim: SimUpstreamOptions = {}) {
  return cachedProxy(settings, sim);
}

test("chat, responses and embeddings: MISS then HIT (keys in any order), byte-identical, upstream not called", async () => {
  await using s = await setup();
  const { sim, proxy } = s;
  const cases: [keyof typeof PATHS, Record<string, unknown>, Record<string, unknown>][] = [
    ["chat", { model: "gpt-test", temperature: 0, messages: [{ role: "user", content: "hi" }] }, {
      messages: [{ content: "hi", role: "user" }],
      temperature: 0,
      model: "gpt-test",
    }],
    ["responses", { model: "gpt-test", input: "hi", metadata: { a: "1", b: "2" } }, {
      metadata: { b: "2", a: "1" },
      input: "hi",
      model: "gpt-test",
    }],
    ["embeddings", { model: "gpt-test", input: ["a", "b"] }, { input: ["a", "b"], model: "gpt-test" }],
  ];
  for (const [route, first, reordered] of cases) {
    const miss = await post(proxy, route, first);
    assert.equal(miss.status, 200, miss.text);
    assert.equal(miss.cache, "MISS", route);
    await proxy.services.cache.settled();
    const calls = sim.count();
    const hit = await post(proxy, route, reordered);
    assert.equal(hit.cache, "HIT", route);
    assert.equal(sim.count(), calls, `${route}: the upstream was not called`);
    assert.equal(hit.text, miss.text, `${route}: byte-identical`);
    assert.equal(hit.headers.get("content-type"), miss.headers.get("content-type"));
    assert.equal(hit.headers.get("x-llmproxy-endpoint"), "a", "the endpoint that produced it");
    assert.equal(hit.headers.get("x-llmproxy-attempts"), "0");
  }
  // stream: false and a missing stream are one request; a streamed one is another.
  assert.equal((await post(proxy, "chat", { ...cases[0][1], stream: false })).cache, "HIT");
  const streamed = await post(proxy, "chat", { ...cases[0][1], stream: true });
  assert.equal(streamed.cache, "MISS");
  assert.match(streamed.text, /^data: /);

  const figures = await cacheStats(proxy);
  assert.equal(figures.hits, 4);
  assert.equal(figures.misses, 4);
  assert.equal(figures.entries, 4);
  assert.ok((figures.bytes as number) > 1000);
});

test("the SDK reads a HIT like the original: JSON, and streams with tool calls, reasoning and the usage chunk", async () => {
  await using s = await setup();
  const { sim, proxy } = s;
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "x", maxRetries: 0 });

  const request = { model: "gpt-test", messages: [{ role: "user" as const, content: "json please" }] };
  const first = await client.chat.completions.create(request).withResponse();
  await proxy.services.cache.settled();
  const again = await client.chat.completions.create(request).withResponse();
  assert.equal(again.response.headers.get("x-llmproxy-cache"), "HIT");
  assert.deepEqual(again.data, first.data);

  const streamed = {
    model: "gpt-test",
    stream: true as const,
    stream_options: { include_usage: true },
    reasoning_effort: "low" as const,
    tools: [{
      type: "function" as const,
      function: {
        name: "get_weather",
        parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
      },
    }],
    messages: [{ role: "user" as const, content: "weather in Paris?" }],
  };
  const read = async () => {
    const { data, response } = await client.chat.completions.create(streamed).withResponse();
    const chunks: unknown[] = [];
    for await (const chunk of data) chunks.push(chunk);
    await proxy.services.cache.settled();
    return { chunks, cache: response.headers.get("x-llmproxy-cache") };
  };
  const original = await read();
  const calls = sim.count();
  const replay = await read();
  assert.equal(original.cache, "MISS");
  assert.equal(replay.cache, "HIT");
  assert.equal(sim.count(), calls);
  assert.deepEqual(replay.chunks, original.chunks);
  const text = JSON.stringify(replay.chunks);
  assert.match(text, /"tool_calls":\[\{"index":0,"id":"call_/);
  assert.match(text, /"arguments":"/);
  assert.match(text, /"reasoning_content":"Thinking/);
  assert.match(text, /"usage":\{"prompt_tokens":\d+/);
  assert.ok(replay.chunks.length >= 8, `every event replayed as its own chunk: ${replay.chunks.length}`);

  // Raw bytes too: the replay is the original stream, event by event.
  const raw = await post(proxy, "chat", streamed);
  assert.equal(raw.cache, "HIT");
  assert.match(raw.headers.get("content-type") ?? "", /text\/event-stream/);
  assert.ok(raw.text.endsWith("data: [DONE]\n\n"));
});

test("a streamed Responses answer replays to responses.stream(...).finalResponse() as it was", async () => {
  await using s = await setup();
  const { sim, proxy } = s;
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "x", maxRetries: 0 });
  const read = async () => {
    const stream = client.responses.stream({ model: "gpt-test", input: "tell me a story" });
    const events: unknown[] = [];
    for await (const event of stream) events.push(event);
    const final = await stream.finalResponse();
    await proxy.services.cache.settled();
    return { events, final };
  };
  const original = await read();
  const calls = sim.count();
  const replay = await read();
  assert.equal(sim.count(), calls);
  assert.deepEqual(replay.final, original.final);
  assert.deepEqual(replay.events, original.events);
  assert.match(replay.final.output_text, /echo: tell me a story/);
  assert.equal((replay.events.at(-1) as { type: string }).type, "response.completed");
  assert.equal((await cacheStats(proxy)).hits, 1);
});

test("nothing incomplete is stored: errors, non-200s, empty answers, cut and cancelled streams", async () => {
  await using s = await setup(["allowed_fails: 100"], {
    chunks: 6,
    chunkDelayMs: 20,
  });
  const { sim, proxy } = s;
  const expectMissThenStored = async (body: Record<string, unknown>, label: string) => {
    await proxy.services.cache.settled();
    const calls = sim.count();
    const again = await post(proxy, "chat", body);
    assert.equal(again.status, 200, label);
    assert.equal(again.cache, "MISS", `${label}: nothing was stored`);
    assert.equal(sim.count(), calls + 1);
  };

  sim.next({ kind: "status", status: 400 });
  const caller = await post(proxy, "chat", chatBody("caller error"));
  assert.equal(caller.status, 400);
  assert.equal(caller.cache, "MISS");
  await expectMissThenStored(chatBody("caller error"), "400");

  sim.next({ kind: "status", status: 500 });
  assert.equal((await post(proxy, "chat", chatBody("server error"))).status, 503);
  await expectMissThenStored(chatBody("server error"), "500");

  sim.next({ kind: "status", status: 201, body: { id: "x", object: "chat.completion", choices: [] } });
  assert.equal((await post(proxy, "chat", chatBody("created"))).status, 201);
  await expectMissThenStored(chatBody("created"), "201");

  sim.next({ kind: "status", status: 200, body: {} });
  assert.equal((await post(proxy, "chat", chatBody("empty"))).text, "{}");
  await expectMissThenStored(chatBody("empty"), "empty answer");

  sim.next({ kind: "cut", afterChunks: 3 });
  const cut = await post(proxy, "chat", chatBody("cut", { stream: true }));
  assert.match(cut.text, /upstream_stream_error/);
  await expectMissThenStored(chatBody("cut", { stream: true }), "cut stream");

  const cancelled = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify(chatBody("cancel me", { stream: true })),
  });
  const reader = cancelled.body!.getReader();
  await reader.read();
  await reader.cancel();
  await delay(200); // the rest of the stream would have arrived by now
  await expectMissThenStored(chatBody("cancel me", { stream: true }), "cancelled stream");

  // Each retry above was a complete success, and only those are entries.
  assert.equal((await cacheStats(proxy)).entries, 6);
});

test("a JSON answer whose bytes are not UTF-8 reaches the client byte for byte and is not stored", async () => {
  // {"id":"chatcmpl-raw","object":"chat.completion","choices":[],"note":"<0xff>"}: parses once decoded, but a replay
  // of the decoded text would not be the same bytes.
  const prefix = new TextEncoder().encode(
    '{"id":"chatcmpl-raw","object":"chat.completion","choices":[],"note":"',
  );
  const raw = new Uint8Array([...prefix, 0xff, ...new TextEncoder().encode('"}')]);
  let calls = 0;
  await using upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    calls++;
    return new Response(raw, { headers: { "content-type": "application/json" } });
  });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(`http://127.0.0.1:${upstream.addr.port}`)], ["cache: true"]),
  );
  for (let i = 0; i < 2; i++) {
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify(chatBody("raw bytes")),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-llmproxy-cache"), "MISS");
    assert.deepEqual(new Uint8Array(await response.arrayBuffer()), raw);
    await proxy.services.cache.settled();
  }
  assert.equal(calls, 2);
});

test("answers over max_entry_bytes are served whole, not stored, and logged at warn", async () => {
  await using s = await setup(["cache_params: { max_entry_bytes: 300 }"]);
  const { sim, proxy } = s;
  for (const stream of [false, true]) {
    for (let i = 0; i < 2; i++) {
      const answer = await post(proxy, "chat", chatBody("big", { stream }));
      assert.equal(answer.status, 200);
      assert.equal(answer.cache, "MISS");
      assert.ok(answer.text.length > 300);
      assert.match(answer.text, stream ? /data: \[DONE\]\n\n$/ : /"object":"chat.completion"/);
    }
  }
  assert.equal(sim.count(), 4);
  assert.equal((await cacheStats(proxy)).entries, 0);
  const warned = proxy.logs.filter((line) =>
    line.includes('"level":"warn"') && line.includes("max_entry_bytes")
  );
  assert.equal(warned.length, 4);
});

test("with the cache on, a stream is still pass-through: first chunk at once, a client that leaves cancels", async () => {
  await using s = await setup([], { chunks: 20, chunkDelayMs: 40 });
  const { sim, proxy } = s;
  const started = performance.now();
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify(chatBody("pass it through", { stream: true })),
  });
  const reader = response.body!.getReader();
  await reader.read();
  const firstAt = performance.now() - started;
  assert.ok(firstAt < 300, `first chunk after ${Math.round(firstAt)}ms of an 800ms stream`);
  await reader.read();
  await reader.cancel();
  const deadline = Date.now() + 1500;
  while (sim.cancelledStreams === 0 && Date.now() < deadline) await delay(20);
  assert.equal(sim.cancelledStreams, 1, "the upstream saw its stream cancelled");
  assert.equal((await cacheStats(proxy)).entries, 0);
});

test("per-request controls: body cache object and Cache-Control header, stripped before the upstream", async () => {
  await using s = await setup();
  const { sim, proxy } = s;
  const body = chatBody("controls");

  const fresh = await post(proxy, "chat", { ...body, cache: { "no-cache": true } });
  assert.equal(fresh.cache, "BYPASS");
  assert.equal("cache" in (sim.last!.body as object), false);
  assert.equal((await post(proxy, "chat", body)).cache, "HIT", "no-cache still stores");
  assert.equal((await post(proxy, "chat", body, { "cache-control": "no-cache" })).cache, "BYPASS");
  assert.equal(sim.last!.headers["cache-control"], undefined);
  assert.equal(sim.count(), 2);

  const unstored = chatBody("not stored");
  assert.equal((await post(proxy, "chat", { ...unstored, cache: { "no-store": true } })).cache, "MISS");
  assert.equal((await post(proxy, "chat", unstored, { "cache-control": "no-store" })).cache, "MISS");
  assert.equal((await post(proxy, "chat", unstored)).cache, "MISS");
  assert.equal(
    (await post(proxy, "chat", unstored, { "Cache-Control": "no-store" })).cache,
    "HIT",
    "no-store reads",
  );

  const short = chatBody("short-lived");
  assert.equal((await post(proxy, "chat", { ...short, cache: { ttl: 0.6 } })).cache, "MISS");
  assert.equal((await post(proxy, "chat", short)).cache, "HIT");
  await delay(650);
  assert.equal((await post(proxy, "chat", short, { "cache-control": "max-age=0" })).cache, "MISS", "expired");
  assert.equal((await post(proxy, "chat", short)).cache, "MISS", "max-age=0 did not store");

  const bad = await post(proxy, "chat", { ...body, cache: { "no-cache": "yes" } });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /'cache.no-cache' must be a boolean/);

  const figures = await cacheStats(proxy);
  assert.equal(figures.bypasses, 2);
  assert.equal(figures.hits, 3);
});

test("cache: false turns it all off: every request goes upstream, marked BYPASS", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)], ["cache: false"]));
  for (let i = 0; i < 3; i++) assert.equal((await post(proxy, "chat", chatBody())).cache, "BYPASS");
  assert.equal((await post(proxy, "chat", chatBody("s", { stream: true }))).cache, "BYPASS");
  assert.equal(sim.count(), 4);
  const figures = await cacheStats(proxy);
  assert.equal(figures.enabled, false);
  assert.equal(figures.entries, 0);
});

test("a cache write the store refuses is logged at warn and the client never notices", async () => {
  // max_bytes below one entry: the in-memory store refuses every write.
  await using s = await setup(["cache_params: { max_bytes: 300 }"]);
  const { sim, proxy } = s;
  for (const stream of [false, true]) {
    for (let i = 0; i < 2; i++) {
      const answer = await post(proxy, "chat", chatBody("refused", { stream }));
      assert.equal(answer.status, 200);
      assert.equal(answer.cache, "MISS");
      assert.match(answer.text, stream ? /data: \[DONE\]\n\n$/ : /"object":"chat.completion"/);
    }
  }
  assert.equal(sim.count(), 4);
  const figures = await cacheStats(proxy);
  assert.equal(figures.write_failures, 4);
  assert.ok(
    proxy.logs.some((line) => line.includes('"level":"warn"') && line.includes("cache write failed")),
  );
});

test({
  name: "Redis stopped mid-stream: the stream completes; DELETE /cache drops answers only, with SCAN/UNLINK",
  ignore: !hasRedis,
  fn: async () => {
    await using redis = await startRedis();
    await using a = await SimUpstream.start({ name: "a", quiet: true, chunks: 6, chunkDelayMs: 30 });
    await using b = await SimUpstream.start({ name: "b", quiet: true });
    const yaml = groupYaml(
      [endpointYaml(a.url, { name: "a", weight: 0 }), endpointYaml(b.url, { name: "b", weight: 1 })],
      ["cache: true", `redis_url: ${redis.url}`, "allowed_fails: 1"],
    );
    await using proxy = await startProxy(yaml);
    for (const content of ["one", "two", "three"]) {
      assert.equal((await post(proxy, "chat", chatBody(content))).cache, "MISS");
    }
    b.next({ kind: "status", status: 500 }); // b cools down; a (the fallback) answers
    assert.equal((await post(proxy, "chat", chatBody("four"))).headers.get("x-llmproxy-endpoint"), "a");
    const figures = await cacheStats(proxy);
    assert.equal(figures.entries, 4);

    for (const path of ["/cache", "/v1/cache"]) {
      const cleared = await fetch(`${proxy.url}${path}`, { method: "DELETE" });
      assert.deepEqual(await cleared.json(), { deleted: path === "/cache" ? 4 : 0 });
    }
    const stats = await (await fetch(`${proxy.url}/stats`)).json();
    assert.equal(stats.cache.entries, 0);
    assert.equal(
      stats.endpoints.find((e: { id: string }) => e.id === "b").state,
      "cooling_down",
      "cooldown kept",
    );
    assert.equal((await post(proxy, "chat", chatBody("one"))).cache, "MISS");

    // Redis goes away while a stream is being served: the client gets all of it.
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify(chatBody("through an outage", { stream: true })),
    });
    const reader = response.body!.getReader();
    let text = new TextDecoder().decode((await reader.read()).value);
    await redis.stop();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      text += new TextDecoder().decode(chunk.value);
    }
    assert.equal(response.status, 200);
    assert.ok(text.endsWith("data: [DONE]\n\n"), text);
    const later = await post(proxy, "chat", chatBody("while down"));
    assert.equal(later.status, 200);
  },
});
