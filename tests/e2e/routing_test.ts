/**
 * Weighted routing, fallbacks, failover, cooldowns, and the errors a client sees when nothing can serve it.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const chatBody = (content = "hi", extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }], ...extra });

async function chat(url: string, extra: Record<string, unknown> = {}) {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: chatBody("hi", extra),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
}

test("weights 3:1: every window of 4 requests sends 3 and 1; weight 0 gets nothing while primaries serve", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using c = await SimUpstream.start({ name: "c", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(a.url, { name: "a", weight: 3 }),
    endpointYaml(b.url, { name: "b", weight: 1 }),
    endpointYaml(c.url, { name: "c", weight: 0 }),
  ]));
  const served: string[] = [];
  for (let i = 0; i < 16; i++) {
    const response = await chat(proxy.url);
    assert.equal(response.status, 200);
    served.push(response.headers.get("x-llmproxy-endpoint")!);
  }
  for (let start = 0; start < 16; start += 4) {
    const window = served.slice(start, start + 4);
    assert.equal(window.filter((id) => id === "a").length, 3, window.join());
    assert.equal(window.filter((id) => id === "b").length, 1, window.join());
  }
  assert.equal(c.count(), 0);
});

test("a 500 fails over to the other primary; the client sees only good answers", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(a.url, { name: "a", weight: 1 }),
    endpointYaml(b.url, { name: "b", weight: 1 }),
  ], ["allowed_fails: 100"]));
  a.always({ kind: "status", status: 500 });
  const attempts: string[] = [];
  for (let i = 0; i < 4; i++) {
    const response = await chat(proxy.url);
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get("x-llmproxy-endpoint"), "b");
    attempts.push(response.headers.get("x-llmproxy-attempts")!);
  }
  assert.equal(a.count(), 2, "a keeps its turn in the rotation (allowed_fails not reached)");
  assert.deepEqual(attempts.toSorted(), ["1", "1", "2", "2"]);
});

test("failover on 500, 429, 401/403/404, 408 and connection errors; weight-0 fallback used when primaries fail", async () => {
  for (const status of [500, 502, 503, 429, 408, 401, 403, 404]) {
    await using primary = await SimUpstream.start({ name: "primary", quiet: true });
    await using fallback = await SimUpstream.start({ name: "fallback", quiet: true });
    await using proxy = await startProxy(groupYaml([
      endpointYaml(primary.url, { name: "primary", weight: 1 }),
      endpointYaml(fallback.url, { name: "fallback", weight: 0 }),
    ]));
    primary.next({ kind: "status", status });
    const response = await chat(proxy.url);
    assert.equal(response.status, 200, `after ${status}: ${response.text}`);
    assert.equal(response.headers.get("x-llmproxy-endpoint"), "fallback", `after ${status}`);
    assert.equal(response.headers.get("x-llmproxy-attempts"), "2");
    assert.equal(primary.count(), 1);
  }

  // A port with nothing listening: connection refused.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadUrl = `http://127.0.0.1:${listener.addr.port}`;
  listener.close();
  await using fallback = await SimUpstream.start({ name: "fallback", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(deadUrl, { name: "dead", weight: 1 }),
    endpointYaml(fallback.url, { name: "fallback", weight: 0 }),
  ]));
  const response = await chat(proxy.url);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("x-llmproxy-endpoint"), "fallback");
});

test("400, 413 and 422 go straight back to the client with the upstream's own body, no failover", async () => {
  for (const status of [400, 413, 422]) {
    await using a = await SimUpstream.start({ name: "a", quiet: true });
    await using b = await SimUpstream.start({ name: "b", quiet: true });
    await using proxy = await startProxy(groupYaml([
      endpointYaml(a.url, { name: "a", weight: 1 }),
      endpointYaml(b.url, { name: "b", weight: 1 }),
    ]));
    const upstreamError = {
      error: {
        message: `bad thing ${status}`,
        type: "invalid_request_error",
        param: "messages",
        code: "bad",
      },
    };
    a.always({ kind: "status", status, body: upstreamError });
    b.always({ kind: "status", status, body: upstreamError });
    const response = await chat(proxy.url);
    assert.equal(response.status, status);
    assert.deepEqual(response.json(), upstreamError);
    assert.equal(a.count() + b.count(), 1, "no second attempt");
  }
});

test("an endpoint that reaches allowed_fails cools down, is skipped, and comes back after cooldown_time", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(
    groupYaml(
      [endpointYaml(a.url, { name: "a", weight: 1 }), endpointYaml(b.url, { name: "b", weight: 1 })],
      [
        "allowed_fails: 2",
        "cooldown_time: 0.6",
      ],
    ).replace("  cooldown_time: 30\n", ""),
  );
  a.always({ kind: "status", status: 500 });
  for (let i = 0; i < 6; i++) assert.equal((await chat(proxy.url)).status, 200);
  assert.equal(a.count(), 2, "two failures, then a was skipped");
  const stats = await (await fetch(`${proxy.url}/stats`)).json();
  const aStats = stats.endpoints.find((endpoint: { id: string }) => endpoint.id === "a");
  assert.equal(aStats.state, "cooling_down");
  assert.equal(aStats.cooldown_reason, "failures");
  assert.equal(aStats.failures, 2);

  a.always({ kind: "ok" });
  await delay(700);
  for (let i = 0; i < 4; i++) assert.equal((await chat(proxy.url)).status, 200);
  assert.equal(a.count(), 4, "a serves its share again after the cooldown");
});

test("a 429 cools the endpoint at once for its Retry-After, even with allowed_fails > 1", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(
    groupYaml(
      [endpointYaml(a.url, { name: "a", weight: 1 }), endpointYaml(b.url, { name: "b", weight: 1 })],
      [
        "allowed_fails: 5",
      ],
    ),
  );
  a.next({ kind: "status", status: 429, headers: { "retry-after": "7" } });
  for (let i = 0; i < 4; i++) assert.equal((await chat(proxy.url)).status, 200);
  assert.equal(a.count(), 1);
  const stats = await (await fetch(`${proxy.url}/stats`)).json();
  const aStats = stats.endpoints.find((endpoint: { id: string }) => endpoint.id === "a");
  assert.equal(aStats.cooldown_reason, "rate_limit");
  const remaining = Date.parse(aStats.cooldown_until) - Date.now();
  assert.ok(remaining > 5000 && remaining <= 7000, `cooldown for ~7s, got ${remaining}ms`);
});

test("every endpoint failing: 503 in the OpenAI envelope naming what each attempt got", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(a.url, { name: "a", weight: 1 }),
    endpointYaml(b.url, { name: "b", weight: 1 }),
  ]));
  a.always({ kind: "status", status: 500 });
  b.always({ kind: "status", status: 502 });
  const response = await chat(proxy.url);
  assert.equal(response.status, 503);
  const { error } = response.json();
  assert.equal(error.type, "service_unavailable");
  assert.equal(error.code, "no_healthy_endpoint");
  assert.match(error.message, /a: HTTP 500/);
  assert.match(error.message, /b: HTTP 502/);
  assert.ok(!error.message.includes("127.0.0.1"), "no upstream URLs in errors");
  assert.ok(!error.message.includes("sk-test"), "no keys in errors");

  // Both are now cooling down (allowed_fails 1): the next request fails fast with Retry-After.
  const next = await chat(proxy.url);
  assert.equal(next.status, 503);
  assert.ok(Number(next.headers.get("retry-after")) >= 1);
  assert.equal(a.count() + b.count(), 2, "cooling endpoints are not called");
});

test("all endpoints rate limited: 429 with Retry-After", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(a.url, { name: "a" })]));
  a.next({ kind: "status", status: 429, headers: { "retry-after": "20" } });
  const first = await chat(proxy.url);
  assert.equal(first.status, 429);
  assert.equal(first.headers.get("retry-after"), "20", "the 429 that cooled it says when it comes back");
  const second = await chat(proxy.url);
  assert.equal(second.status, 429);
  const retryAfter = Number(second.headers.get("retry-after"));
  assert.ok(retryAfter >= 18 && retryAfter <= 20, `retry-after ${retryAfter}`);
  assert.equal(second.json().error.code, "no_healthy_endpoint");
  assert.equal(a.count(), 1);
});

test("a request waits for a short cooldown to end instead of failing", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(a.url, { name: "a" })], ["max_wait_for_capacity: 2"]),
  );
  a.next({ kind: "status", status: 429, headers: { "retry-after-ms": "300" } });
  const started = Date.now();
  const response = await chat(proxy.url);
  assert.equal(response.status, 200, response.text);
  assert.ok(Date.now() - started >= 250, "waited for the cooldown");
  assert.equal(a.count(), 2);
});

test("upstream timeouts fail over; a timeout on the last attempt is a 504", async () => {
  await using slow = await SimUpstream.start({ name: "slow", quiet: true });
  await using fast = await SimUpstream.start({ name: "fast", quiet: true });
  const timeout = "          timeout: 0.3";
  await using proxy = await startProxy(groupYaml([
    endpointYaml(slow.url, { name: "slow", weight: 1, extra: timeout }),
    endpointYaml(fast.url, { name: "fast", weight: 0, extra: timeout }),
  ]));
  slow.always({ kind: "hang" });
  const failedOver = await chat(proxy.url);
  assert.equal(failedOver.status, 200);
  assert.equal(failedOver.headers.get("x-llmproxy-endpoint"), "fast");

  fast.always({ kind: "hang" });
  await using proxy2 = await startProxy(
    groupYaml([endpointYaml(fast.url, { name: "fast", extra: timeout })]),
  );
  const started = Date.now();
  const timedOut = await chat(proxy2.url);
  assert.equal(timedOut.status, 504);
  assert.equal(timedOut.json().error.type, "timeout");
  assert.ok(Date.now() - started < 2000);
});

test("a 200 with a malformed JSON body counts as a failure and fails over", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(a.url, { name: "a", weight: 1 }),
    endpointYaml(b.url, { name: "b", weight: 0 }),
  ]));
  a.next({ kind: "malformed" });
  const response = await chat(proxy.url);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("x-llmproxy-endpoint"), "b");
  assert.ok(response.json().choices);

  a.always({ kind: "malformed" });
  b.always({ kind: "malformed" });
  await using proxy2 = await startProxy(groupYaml([endpointYaml(a.url, { name: "a" })]));
  const failed = await chat(proxy2.url);
  assert.equal(failed.status, 503);
  assert.match(failed.json().error.message, /a: malformed answer/);
});

test("a group made only of weight-0 endpoints spreads traffic over all of them as equals", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(a.url, { name: "a", weight: 0 }),
    endpointYaml(b.url, { name: "b", weight: 0 }),
  ]));
  for (let i = 0; i < 6; i++) assert.equal((await chat(proxy.url)).status, 200);
  assert.equal(a.count(), 3);
  assert.equal(b.count(), 3);
});

test("an upstream that sends headers and then stalls times out as a 504, streamed or not", async () => {
  const closing = new AbortController();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    const body = new ReadableStream({
      start(controller) {
        closing.signal.addEventListener("abort", () => {
          try {
            controller.close();
          } catch { /* already cancelled by the proxy's timeout */ }
        });
      },
    });
    return new Response(body, { headers: { "content-type": "application/json" } });
  });
  try {
    await using proxy = await startProxy(groupYaml([
      endpointYaml(`http://127.0.0.1:${server.addr.port}`, {
        name: "stall",
        extra: "          timeout: 0.3",
      }),
    ], ["allowed_fails: 10"]));
    for (const stream of [false, true]) {
      const response = await chat(proxy.url, { stream });
      assert.equal(response.status, 504, `stream ${stream}: ${response.text}`);
      assert.equal(response.json().error.type, "timeout");
    }
  } finally {
    closing.abort();
    await server.shutdown();
  }
});

test("retries used up after a 429 while another endpoint is healthy: 429 with Retry-After, no false claim", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(a.url, { name: "a", weight: 1 }),
    endpointYaml(b.url, { name: "b", weight: 0 }),
  ], ["num_retries: 0"]));
  a.next({ kind: "status", status: 429, headers: { "retry-after": "20" } });
  const response = await chat(proxy.url);
  assert.equal(response.status, 429);
  assert.equal(response.headers.get("retry-after"), "1");
  assert.doesNotMatch(response.json().error.message, /Every endpoint/);
  assert.match(response.json().error.message, /a: HTTP 429/);
  assert.equal(b.count(), 0);
  assert.equal((await chat(proxy.url)).headers.get("x-llmproxy-endpoint"), "b", "the next request goes to b");
});
