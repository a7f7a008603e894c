/**
 * The tokens-per-minute budget counts what the upstream said it used, whatever it says: a fractional figure is
 * rounded (Redis `INCRBY` takes integers only: the correction was lost), and a figure that is no count of tokens
 * (negative, a string, one past any answer's size) leaves the estimate as it was instead of breaking or poisoning
 * the window. An attempt that failed gives its estimate back: the shared budget is not charged for tokens never
 * used. Run on the memory store and on Redis.
 */

import assert from "node:assert/strict";
import { type Clock, systemClock } from "../../src/core/clock.ts";
import { BUDGET_WINDOW_MS, estimateTokens, windowEnd } from "../../src/ratelimit/budget.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

/** The proxy's clock, 500 ms into a budget window, so no correction falls into the next one. */
function windowClock(): Clock {
  const real = Date.now();
  const offset = windowEnd(real, BUDGET_WINDOW_MS) + 500 - real;
  return { now: () => Date.now() + offset, sleep: systemClock.sleep };
}

/** An upstream whose answer reports the usage that the request's message holds as JSON (or a 500 for "fail"). */
function usageUpstream() {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const body = await request.json();
    const content: string = body.messages[0].content;
    if (content === "fail") return new Response("overloaded", { status: 500 });
    return Response.json({
      id: "c",
      object: "chat.completion",
      model: "m",
      choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
      usage: JSON.parse(content),
    });
  });
}

const request = (content: string) => ({
  model: "gpt-test",
  max_tokens: 10,
  messages: [{ role: "user", content }],
});
const ask = async (url: string, content: string) => {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request(content)),
  });
  await response.body?.cancel();
  return response;
};

/** The endpoint's tokens used in the current window, as `/stats` shows them. */
async function tpmUsed(url: string, id: string): Promise<number> {
  const stats = await (await fetch(`${url}/stats`)).json();
  return stats.endpoints.find((endpoint: { id: string }) => endpoint.id === id).budget.tpm.used;
}

const tpm = "          tpm: 1000000";
/** The usage objects an upstream may send, and the tokens the window should hold after each. */
const FIGURES: [string, (estimate: number) => number][] = [
  ['{"total_tokens": 7.6}', () => 8],
  ['{"prompt_tokens": 3.4, "completion_tokens": 2}', () => 5],
  ['{"total_tokens": -40}', (estimate) => estimate],
  ['{"total_tokens": "12"}', (estimate) => estimate],
  ['{"total_tokens": 1e300}', (estimate) => estimate],
  ['{"total_tokens": 123456789012345678}', (estimate) => estimate],
];

for (const store of ["memory", "redis"] as const) {
  test(`tpm (${store}): fractional usage is rounded, a bad figure leaves the estimate`, {
    ignore: store === "redis" && !hasRedis,
    timeout: 30_000,
  }, async () => {
    await using redis = store === "redis" ? await startRedis() : undefined;
    await using upstream = usageUpstream();
    for (const [usage, expected] of FIGURES) {
      await using proxy = await startProxy(
        groupYaml([endpointYaml(`http://127.0.0.1:${upstream.addr.port}`, { name: "a", extra: tpm })], [
          ...(redis ? [`redis_url: ${redis.url}`] : []),
        ]),
        { clock: windowClock() },
      );
      if (redis) await redis.command("FLUSHALL");
      // What the proxy charges before the answer (the figure the test expects a bad usage to leave).
      const estimate = estimateTokens("chat", request(usage));
      const response = await ask(proxy.url, usage);
      assert.equal(response.status, 200);
      // The correction is written off the response path.
      let used = NaN;
      for (let i = 0; i < 50; i++) {
        used = await tpmUsed(proxy.url, "a");
        if (used === expected(estimate)) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(used, expected(estimate), `usage ${usage}`);
      // The endpoint still serves: the window was not spent by a figure.
      assert.equal((await ask(proxy.url, '{"total_tokens": 1}')).status, 200, `after ${usage}`);
    }
  });

  test(`tpm (${store}): a failed attempt gives its estimate back`, {
    ignore: store === "redis" && !hasRedis,
    timeout: 30_000,
  }, async () => {
    await using redis = store === "redis" ? await startRedis() : undefined;
    await using upstream = usageUpstream();
    await using proxy = await startProxy(
      groupYaml([endpointYaml(`http://127.0.0.1:${upstream.addr.port}`, { name: "a", extra: tpm })], [
        "num_retries: 0",
        ...(redis ? [`redis_url: ${redis.url}`] : []),
      ]),
      { clock: windowClock() },
    );
    const response = await ask(proxy.url, "fail");
    assert.equal(response.status >= 500, true, `status ${response.status}`);
    let used = NaN;
    for (let i = 0; i < 50; i++) {
      used = await tpmUsed(proxy.url, "a");
      if (used === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(used, 0);
  });
}
