/**
 * Clients written for the Python LLMProxy: raw HTTP with `extra_body` in the JSON body, and monitoring that reads
 * `X-Proxy-Cache-Hit` / `X-Proxy-Latency-Ms` and the `_proxy_cache_hit` body field. Raw fetch and the official
 * openai client, through the real proxy in front of the simulated upstream.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { cachedProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "gpt-test",
  messages: [{ role: "user", content }],
  ...extra,
});

async function post(url: string, body: unknown, path = "/v1/chat/completions") {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { response, text: await response.text() };
}

const markers = (response: Response) => ({
  hit: response.headers.get("x-proxy-cache-hit"),
  latency: response.headers.get("x-proxy-latency-ms"),
});

test("raw HTTP extra_body: merged like the Python SDK does, its cache control honoured, never sent upstream", async () => {
  await using s = await cachedProxy();
  const { sim, proxy } = s;
  const noCache = chat("three times", {
    temperature: 1,
    extra_body: { cache: { "no-cache": true }, temperature: 0 },
  });
  const verdicts: (string | null)[] = [];
  for (let i = 0; i < 3; i++) {
    const { response } = await post(proxy.url, noCache);
    assert.equal(response.status, 200);
    verdicts.push(response.headers.get("x-llmproxy-cache"));
    assert.equal(response.headers.get("x-proxy-cache-hit"), "false");
    await proxy.services.cache.settled();
  }
  assert.deepEqual(verdicts, ["BYPASS", "BYPASS", "BYPASS"]);
  assert.equal(sim.count("/chat/completions"), 3, "no-cache from extra_body: every call went upstream");
  for (const request of sim.requests) {
    const body = request.body as Record<string, unknown>;
    assert.equal(body.extra_body, undefined, "extra_body is never forwarded");
    assert.equal(body.cache, undefined, "the cache control is the proxy's own");
    assert.equal(body.temperature, 0, "extra_body's field wins over the body's, as in the SDK");
  }

  // Without a cache control, extra_body's fields are part of the request: the same merged body is a HIT...
  const plain = chat("merged", { extra_body: { top_p: 0.5 } });
  assert.equal((await post(proxy.url, plain)).response.headers.get("x-llmproxy-cache"), "MISS");
  await proxy.services.cache.settled();
  const same = chat("merged", { top_p: 0.5 });
  assert.equal((await post(proxy.url, same)).response.headers.get("x-llmproxy-cache"), "HIT");
  assert.equal((sim.last!.body as Record<string, unknown>).top_p, 0.5);
  // ...and a streamed raw-HTTP call with no-cache (the Python live tests' shape) streams and bypasses.
  const stream = await post(
    proxy.url,
    chat("raw stream", { stream: true, extra_body: { cache: { "no-cache": true } } }),
  );
  assert.match(stream.text, /data: \[DONE\]/);
  assert.equal(stream.response.headers.get("x-proxy-cache-hit"), "false");

  const bad = await post(proxy.url, chat("bad", { extra_body: "no-cache" }));
  assert.equal(bad.response.status, 400);
  assert.equal(JSON.parse(bad.text).error.param, "extra_body");
  const nested = await post(proxy.url, chat("nested", { extra_body: { extra_body: {} } }));
  assert.equal(nested.response.status, 400);
  const nullExtra = await post(proxy.url, chat("null", { extra_body: null }));
  assert.equal(nullExtra.response.status, 200);
  assert.equal((sim.last!.body as Record<string, unknown>).extra_body, undefined);
});

test("X-Proxy-Cache-Hit and X-Proxy-Latency-Ms on every generation answer: chat, stream, responses, embeddings", async () => {
  await using s = await cachedProxy([], { latencyMs: 40 });
  const { proxy } = s;
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "x", maxRetries: 0 });
  const calls = {
    chat: () =>
      client.chat.completions.create({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
    responses: () => client.responses.create({ model: "gpt-test", input: "hi" }),
    embeddings: () => client.embeddings.create({ model: "gpt-test", input: "hi" }),
    stream: () =>
      client.chat.completions.create({
        model: "gpt-test",
        stream: true,
        messages: [{ role: "user", content: "s" }],
      }),
  };
  for (const [name, call] of Object.entries(calls)) {
    const seen = [];
    for (let i = 0; i < 2; i++) {
      const { data, response } = await call().withResponse();
      if (Symbol.asyncIterator in data) {
        for await (const _ of data as AsyncIterable<unknown>) {
          /* drain */
        }
      }
      await proxy.services.cache.settled();
      seen.push(markers(response));
      assert.ok(!("_proxy_cache_hit" in data), `${name}: no body marker unless asked for`);
    }
    assert.deepEqual(seen.map((m) => m.hit), ["false", "true"], name);
    for (const { latency } of seen) assert.match(latency ?? "", /^\d+$/, `${name}: whole milliseconds`);
    // The miss waited on the 40 ms upstream; the hit did not.
    assert.ok(Number(seen[0].latency) >= 35, `${name}: miss latency ${seen[0].latency}`);
    assert.ok(Number(seen[1].latency) < Number(seen[0].latency), `${name}: hit faster than miss`);
  }
  // A generation request the proxy answers with its own error carries them too.
  s.sim.always({ kind: "status", status: 500 });
  const { response } = await post(proxy.url, chat("fails", { cache: { "no-cache": true } }));
  assert.ok(response.status >= 500, String(response.status));
  assert.equal(response.headers.get("x-proxy-cache-hit"), "false");
  assert.match(response.headers.get("x-proxy-latency-ms") ?? "", /^\d+$/);
});

test("python_cache_marker: true adds _proxy_cache_hit to non-streamed JSON answers only", async () => {
  await using s = await cachedProxy(["python_cache_marker: true"]);
  const { proxy } = s;
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "x", maxRetries: 0 });
  const ask = () =>
    client.chat.completions.create({ model: "gpt-test", messages: [{ role: "user", content: "m" }] });
  const first = await ask() as unknown as Record<string, unknown>;
  await proxy.services.cache.settled();
  const second = await ask() as unknown as Record<string, unknown>;
  assert.equal(first._proxy_cache_hit, false);
  assert.equal(second._proxy_cache_hit, true);
  assert.deepEqual({ ...second, _proxy_cache_hit: false }, first, "otherwise the cached answer as it was");

  const embedded = await post(proxy.url, { model: "gpt-test", input: "e" }, "/v1/embeddings");
  assert.equal(JSON.parse(embedded.text)._proxy_cache_hit, false);
  const streamed = await post(proxy.url, chat("stream", { stream: true }));
  assert.ok(!streamed.text.includes("_proxy_cache_hit"), "streams are never changed");
  // An error answer is left as it is.
  const missing = await post(proxy.url, chat("x", { model: "no-such-group" }));
  assert.equal(missing.response.status, 404);
  assert.ok(!missing.text.includes("_proxy_cache_hit"));
});
