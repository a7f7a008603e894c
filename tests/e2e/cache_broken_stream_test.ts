/**
 * A stream that is not what its route promises is not cached: a Chat Completions event whose data is not JSON (a
 * gateway's text, a chunk cut mid-object, even exactly at an inner `}`) or a Responses `response.completed` whose data does not parse. The
 * client of the miss gets the bytes as they came; the next identical request goes upstream again instead of being
 * handed the broken stream as a good answer, and so does a request that waited on the first one.
 */

import assert from "node:assert/strict";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const CHUNK =
  `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n`;

const CASES: { name: string; path: string; body: Record<string, unknown>; events: string[] }[] = [
  {
    name: "a chat event that is text, not JSON",
    path: "chat/completions",
    body: { messages: [{ role: "user", content: "hi" }] },
    events: [CHUNK, "data: upstream gateway hiccup\n\n", "data: [DONE]\n\n"],
  },
  {
    name: "a chat event cut mid-object",
    path: "chat/completions",
    body: { messages: [{ role: "user", content: "hi" }] },
    events: [CHUNK, `data: {"id":"c","choices":[{"index":0,"delta":{"content":"hel\n\n`, "data: [DONE]\n\n"],
  },
  {
    name: "a chat event cut exactly at an inner `}` (it opens with `{` and ends with `}`)",
    path: "chat/completions",
    body: { messages: [{ role: "user", content: "hi" }] },
    events: [
      CHUNK,
      `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"}\n\n`,
      "data: [DONE]\n\n",
    ],
  },
  {
    name: "a Responses response.completed whose data is not JSON",
    path: "responses",
    body: { input: "hi" },
    events: [
      `event: response.created\ndata: {"type":"response.created","response":{"id":"resp_1"}}\n\n`,
      `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"hi"}\n\n`,
      `event: response.completed\ndata: {"type":"response.completed","response":{"id":"resp_1"\n\n`,
    ],
  },
];

/** A fake upstream that answers every request with `events`, 20 ms apart; `calls()` counts its requests. */
function brokenUpstream(events: string[]) {
  let calls = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    await request.arrayBuffer();
    calls++;
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        for (const event of events) {
          controller.enqueue(encoder.encode(event));
          await delay(20);
        }
        controller.close();
      },
    });
    return new Response(stream, { headers: { "content-type": "text/event-stream" } });
  });
  return Object.assign(server, { url: `http://127.0.0.1:${server.addr.port}`, calls: () => calls });
}

const asker = (url: string, path: string, body: Record<string, unknown>) => async () => {
  const response = await fetch(`${url}/v1/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", stream: true, ...body }),
  });
  return { text: await response.text(), cache: response.headers.get("x-llmproxy-cache") };
};

test(
  "two instances on one Redis: a follower on the other instance gets the stream as it came, and no entry",
  {
    ignore: !hasRedis,
    timeout: 20_000,
  },
  async () => {
    const { path, body, events } = CASES[0];
    await using redis = await startRedis();
    await using upstream = brokenUpstream(events);
    const yaml = groupYaml([endpointYaml(upstream.url)], ["cache: true", `redis_url: ${redis.url}`]);
    await using a = await startProxy(yaml);
    await using b = await startProxy(yaml);
    const first = asker(a.url, path, body)();
    while (upstream.calls() === 0) await delay(5); // A leads, upstream
    const second = await asker(b.url, path, body)();
    assert.equal((await first).text, events.join(""));
    assert.equal(second.text, events.join(""));
    await delay(100);
    const again = await asker(b.url, path, body)();
    assert.notEqual(again.cache, "HIT");
    assert.equal(again.text, events.join(""));
    assert.equal(upstream.calls() >= 2, true, `upstream calls: ${upstream.calls()}`);
  },
);

for (const { name, path, body, events } of CASES) {
  test(
    `a stream with ${name} is not cached: the next request goes upstream`,
    { timeout: 20_000 },
    async () => {
      await using upstream = brokenUpstream(events);
      await using proxy = await startProxy(groupYaml([endpointYaml(upstream.url)], ["cache: true"]));
      const ask = asker(proxy.url, path, body);
      // Two at once (the second waits on the first), then one more after both ended.
      const [first, second] = await Promise.all([ask(), ask()]);
      assert.equal(first.text, events.join(""));
      assert.equal(second.text, events.join(""));
      await delay(50);
      const third = await ask();
      assert.equal(third.text, events.join(""));
      assert.notEqual(third.cache, "HIT");
      assert.equal(upstream.calls() >= 2, true, `upstream calls: ${upstream.calls()}`);
    },
  );
}

test("a stream whose events hold brackets, quotes and backslashes in their strings is whole: cached", {
  timeout: 20_000,
}, async () => {
  const tricky = (content: string) =>
    `data: ${
      JSON.stringify({
        id: "c",
        object: "chat.completion.chunk",
        choices: [{ index: 0, delta: { content } }],
      })
    }\n\n`;
  const events = [tricky('}"]{'), tricky("\\"), tricky('\\"}'), tricky("{[}]"), "data: [DONE]\n\n"];
  await using upstream = brokenUpstream(events);
  await using proxy = await startProxy(groupYaml([endpointYaml(upstream.url)], ["cache: true"]));
  const ask = asker(proxy.url, "chat/completions", { messages: [{ role: "user", content: "hi" }] });
  assert.equal((await ask()).text, events.join(""));
  await delay(50);
  const again = await ask();
  assert.equal(again.cache, "HIT");
  assert.equal(again.text, events.join(""));
  assert.equal(upstream.calls(), 1);
});
