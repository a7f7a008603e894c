/**
 * The cache and the `openai` client's way of reading a stream: it stops at `[DONE]` and cancels the body. An
 * upstream whose body ends a little after `[DONE]` (the end comes in a later read) has sent the whole answer by
 * then, so it is stored: the same request again is a HIT, byte for byte the upstream's stream, and the upstream is
 * not called. A client that leaves before `[DONE]` leaves nothing stored.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { lingeringUpstream } from "../_support/lingering_upstream.ts";
import { test } from "../_support/test.ts";

const EVENTS = [
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" there"}}]}',
  "data: [DONE]",
].map((event) => event + "\n\n");

test("a stream whose client leaves at [DONE] before the upstream's end is stored; one left earlier is not", {
  timeout: 20_000,
}, async () => {
  // The first event at once, the rest 50 ms later, and the body's end later than its last event.
  await using upstream = lingeringUpstream([
    { afterMs: 0, text: EVENTS[0] },
    { afterMs: 50, text: EVENTS.slice(1).join("") },
  ], 400);
  await using proxy = await startProxy(
    groupYaml([endpointYaml(upstream.url, { name: "a" })], ["cache: true"]),
  );
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "x", maxRetries: 0 });
  const ask = (content: string) =>
    client.chat.completions.create({ model: "gpt-test", stream: true, messages: [{ role: "user", content }] })
      .withResponse();
  const read = async (content: string) => {
    const { data, response } = await ask(content);
    const texts: (string | null | undefined)[] = [];
    for await (const chunk of data) texts.push(chunk.choices[0]?.delta.content);
    return { texts, cache: response.headers.get("x-llmproxy-cache") };
  };

  const first = await read("hello");
  assert.deepEqual(first, { texts: ["Hi", " there"], cache: "MISS" });
  await proxy.services.cache.settled();
  // The client's leaving reaches the proxy a moment after its last read (later on a loaded machine).
  let again = await read("hello");
  for (let tries = 0; tries < 40 && again.cache !== "HIT"; tries++) {
    await delay(50);
    again = await read("hello");
  }
  assert.deepEqual(again, { texts: ["Hi", " there"], cache: "HIT" });
  assert.equal(upstream.calls, 1, "the HIT did not call the upstream");
  const raw = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", stream: true, messages: [{ role: "user", content: "hello" }] }),
  });
  assert.equal(raw.headers.get("x-llmproxy-cache"), "HIT");
  assert.equal(await raw.text(), EVENTS.join(""), "the replay is the upstream's stream, byte for byte");

  // A client that leaves after its first chunk, before [DONE]: nothing stored, the next request is a MISS again.
  const early = await ask("leave early");
  for await (const _chunk of early.data) break;
  await delay(100);
  await proxy.services.cache.settled();
  assert.equal((await read("leave early")).cache, "MISS");
  assert.equal(upstream.calls, 3);
});
