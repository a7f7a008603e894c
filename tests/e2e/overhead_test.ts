/** `x-llmproxy-overhead-ms` on every generation answer, and the overhead histogram of `/metrics` behind it. */

import assert from "node:assert/strict";
import { cachedProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const UPSTREAM_MS = 200;

const chat = (url: string, content: string, stream = false) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }], stream }),
  });

/** The header as a number, checked to be a plain non-negative decimal. */
function overhead(response: Response): number {
  const value = response.headers.get("x-llmproxy-overhead-ms");
  assert.match(value ?? "", /^\d+\.\d$/, `x-llmproxy-overhead-ms: ${value}`);
  return Number(value);
}

test("x-llmproxy-overhead-ms: the proxy's own time, without the upstream's, on misses, hits and streams", async () => {
  await using setup = await cachedProxy([], { latencyMs: UPSTREAM_MS });
  const { url } = setup.proxy;

  const startedAt = performance.now();
  const miss = await chat(url, "hello");
  const elapsed = performance.now() - startedAt;
  await miss.body?.cancel();
  assert.equal(miss.headers.get("x-llmproxy-cache"), "MISS");
  assert.ok(elapsed >= UPSTREAM_MS);
  // The upstream's 200 ms are not the proxy's: the header leaves them out, however loaded the machine is (the
  // client's elapsed time includes everything the proxy measured, and more).
  assert.ok(overhead(miss) <= elapsed - UPSTREAM_MS, `miss overhead ${overhead(miss)} ms of ${elapsed} ms`);

  // A hit never went upstream: all of its time is the proxy's.
  const hitStarted = performance.now();
  const hit = await chat(url, "hello");
  const hitElapsed = performance.now() - hitStarted;
  await hit.body?.cancel();
  assert.equal(hit.headers.get("x-llmproxy-cache"), "HIT");
  assert.ok(overhead(hit) <= hitElapsed);

  const streamStarted = performance.now();
  const stream = await chat(url, "a stream", true);
  const streamElapsed = performance.now() - streamStarted;
  assert.ok(overhead(stream) <= streamElapsed - UPSTREAM_MS, `stream overhead ${overhead(stream)} ms`);
  await stream.text();

  const metrics = await (await fetch(`${url}/metrics`)).text();
  const count = metrics.split("\n").find((line) =>
    line.startsWith('llmproxy_proxy_overhead_seconds_count{route="chat"}')
  );
  assert.equal(count?.split(" ")[1], "3");
});
