/**
 * Waits an upstream asks for that no date can hold: a `retry-after` or an `x-ratelimit-reset-*` of 10^20 seconds
 * (a broken load balancer, a hostile endpoint). The answer that carried it still reaches the client, `/stats`
 * still answers, and the endpoint sits out at most an hour, not for ever.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const HOUR_MS = 3_600_000;
const HUGE = "99999999999999999999";

async function chat(url: string): Promise<{ status: number; endpoint: string | null; body: string }> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
  });
  return {
    status: response.status,
    endpoint: response.headers.get("x-llmproxy-endpoint"),
    body: await response.text(),
  };
}

/** `/stats` (asserted to answer 200) for endpoint `id`. */
// deno-lint-ignore no-explicit-any
async function statsOf(url: string, id: string): Promise<any> {
  const response = await fetch(`${url}/stats`);
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text).endpoints.find((endpoint: { id: string }) => endpoint.id === id);
}

function assertCooledAtMostAnHour(stats: { state: string; cooldown_until: string }) {
  assert.equal(stats.state, "cooling_down");
  const left = Date.parse(stats.cooldown_until) - Date.now();
  assert.ok(left > HOUR_MS - 60_000 && left <= HOUR_MS, `cooled for an hour at most, got ${left} ms`);
}

test(
  "a 200 whose x-ratelimit reset is 10^20 s: the answer reaches the client, /stats answers, an hour's cooldown",
  {
    timeout: 20_000,
  },
  async () => {
    await using a = await SimUpstream.start({ name: "a", quiet: true });
    await using b = await SimUpstream.start({ name: "b", quiet: true });
    await using proxy = await startProxy(groupYaml([
      endpointYaml(a.url, { name: "a", weight: 1000 }),
      endpointYaml(b.url, { name: "b", weight: 1 }),
    ], ["num_retries: 1"]));
    a.responseHeaders = {
      "x-ratelimit-remaining-tokens": "0",
      "x-ratelimit-reset-tokens": `${HUGE}s`,
      "x-ratelimit-reset-requests": `${HUGE}d`,
    };
    const first = await chat(proxy.url);
    assert.equal(first.status, 200, first.body);
    assert.equal(first.endpoint, "a");
    assert.equal(JSON.parse(first.body).object, "chat.completion");
    const next = await chat(proxy.url);
    assert.equal(next.status, 200, next.body);
    assert.equal(next.endpoint, "b");
    const stats = await statsOf(proxy.url, "a");
    assertCooledAtMostAnHour(stats);
    const resets = [stats.rate_limit.reset_tokens_at, stats.rate_limit.reset_requests_at].map(Date.parse);
    for (const reset of resets) {
      assert.ok(reset - Date.now() <= HOUR_MS, `reset within the hour, got ${reset}`);
    }
  },
);

test("a 429 whose retry-after is 10^20 s (or its -ms twin 1e400): fails over, then an hour's cooldown", {
  timeout: 20_000,
}, async () => {
  const waits: Record<string, string>[] = [
    { "retry-after": HUGE },
    { "retry-after-ms": "1e400" },
    { "x-ms-retry-after-ms": HUGE },
  ];
  for (const headers of waits) {
    await using a = await SimUpstream.start({ name: "a", quiet: true });
    await using b = await SimUpstream.start({ name: "b", quiet: true });
    await using proxy = await startProxy(groupYaml([
      endpointYaml(a.url, { name: "a", weight: 1000 }),
      endpointYaml(b.url, { name: "b", weight: 1 }),
    ], ["num_retries: 1"]));
    a.always({ kind: "status", status: 429, headers });
    const reply = await chat(proxy.url);
    assert.equal(reply.status, 200, `${JSON.stringify(headers)}: ${reply.body}`);
    assert.equal(reply.endpoint, "b");
    assertCooledAtMostAnHour(await statsOf(proxy.url, "a"));
  }
});
