/**
 * No partial stream is ever stored, end to end. A cut stream is not enough to prove it (the proxy appends an error
 * event, which alone keeps it out of the cache), so here the upstream ends its stream cleanly, without an error,
 * but before the terminal event (`data: [DONE]`, `response.completed`): the client gets every byte as sent, and the
 * same request later is a MISS that goes upstream again.
 */

import assert from "node:assert/strict";
import { cachedProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const SSE = { "content-type": "text/event-stream" };

const CASES = [
  {
    path: "/v1/chat/completions",
    body: { model: "gpt-test", stream: true, messages: [{ role: "user", content: "partial chat" }] },
    stream:
      'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n' +
      'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n',
  },
  {
    path: "/v1/responses",
    body: { model: "gpt-test", stream: true, input: "partial responses" },
    stream: 'event: response.created\ndata: {"type":"response.created","response":{"id":"resp_p1"}}\n\n' +
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hel"}\n\n',
  },
];

test("a stream that ends cleanly before its terminal event is passed on whole and never stored", async () => {
  await using s = await cachedProxy();
  const { sim, proxy } = s;
  const send = async (path: string, body: Record<string, unknown>) => {
    const response = await fetch(`${proxy.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return {
      status: response.status,
      cache: response.headers.get("x-llmproxy-cache"),
      text: await response.text(),
    };
  };
  for (const { path, body, stream } of CASES) {
    sim.next({ kind: "status", status: 200, body: stream, headers: SSE });
    const first = await send(path, body);
    assert.equal(first.status, 200, path);
    assert.equal(first.cache, "MISS", path);
    assert.equal(
      first.text,
      stream,
      `${path}: the partial stream reaches the client as the upstream sent it`,
    );
    await proxy.services.cache.settled();

    const calls = sim.count();
    const again = await send(path, body);
    assert.equal(again.cache, "MISS", `${path}: the partial stream was not stored`);
    assert.equal(sim.count(), calls + 1, `${path}: the second request went upstream`);
    assert.notEqual(again.text, stream, `${path}: the second answer is the upstream's complete one`);
  }
});
