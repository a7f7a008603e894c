/**
 * `DELETE /cache` while answers are still being made: an answer whose request looked the cache up before the
 * clear (a slow JSON answer, a stream still running) is served but not stored, so the next identical request
 * goes upstream instead of getting what the clear was meant to drop.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

test("DELETE /cache during a slow JSON answer and a running stream: neither is stored after the clear", async () => {
  await using sim = await SimUpstream.start({
    name: "a",
    quiet: true,
    latencyMs: 300,
    chunks: 8,
    chunkDelayMs: 60,
  });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url, { name: "a" })], ["cache: true"]));
  const ask = async (stream: boolean) => {
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-test", stream, messages: [{ role: "user", content: "cleared" }] }),
    });
    const text = await response.text();
    return { status: response.status, cache: response.headers.get("x-llmproxy-cache"), text };
  };
  for (const stream of [false, true]) {
    const first = ask(stream);
    await delay(150);
    const cleared = await fetch(`${proxy.url}/cache`, { method: "DELETE" });
    assert.equal(cleared.status, 200);
    await cleared.body?.cancel();
    const answer = await first;
    assert.equal(answer.status, 200);
    assert.equal(answer.cache, "MISS");
    assert.ok(answer.text.includes("[a]"), answer.text);
    await delay(200);
    assert.equal(
      (await ask(stream)).cache,
      "MISS",
      `stream: ${stream}: the answer made across the clear was stored`,
    );
    // Made after the clear, that one is stored as usual.
    let again = await ask(stream);
    for (let i = 0; again.cache !== "HIT" && i < 20; i++) again = await ask(stream);
    assert.equal(again.cache, "HIT");
  }
  const stats = await (await fetch(`${proxy.url}/stats`)).json();
  assert.equal(stats.cache.clears, 2);
});
