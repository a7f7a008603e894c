/**
 * A stream that is not what its route promises is not cached: a Chat Completions event whose data is not JSON (a
 * gateway's text, a chunk cut mid-object) or a Responses `response.completed` whose data does not parse. The
 * client of the miss gets the bytes as they came; the next identical request goes upstream again instead of being
 * handed the broken stream as a good answer, and so does a request that waited on the first one.
 */

import assert from "node:assert/strict";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
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

for (const { name, path, body, events } of CASES) {
  test(
    `a stream with ${name} is not cached: the next request goes upstream`,
    { timeout: 20_000 },
    async () => {
      let calls = 0;
      await using upstream = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: () => {} },
        async (request) => {
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
        },
      );
      await using proxy = await startProxy(
        groupYaml([endpointYaml(`http://127.0.0.1:${upstream.addr.port}`)], ["cache: true"]),
      );
      const ask = async () => {
        const response = await fetch(`${proxy.url}/v1/${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "gpt-test", stream: true, ...body }),
        });
        return { text: await response.text(), cache: response.headers.get("x-llmproxy-cache") };
      };
      // Two at once (the second waits on the first), then one more after both ended.
      const [first, second] = await Promise.all([ask(), ask()]);
      assert.equal(first.text, events.join(""));
      assert.equal(second.text, events.join(""));
      await delay(50);
      const third = await ask();
      assert.equal(third.text, events.join(""));
      assert.notEqual(third.cache, "HIT");
      assert.equal(calls >= 2, true, `upstream calls: ${calls}`);
    },
  );
}
