/**
 * The routing proofs through the real proxy: priority tiers under a tier-1 rate limit, `latency` and
 * `least_busy` choice, and what /stats and /metrics show of them.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const chatBody = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }], ...extra });

async function chat(url: string, extra: Record<string, unknown> = {}) {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: chatBody(extra),
  });
  const text = await response.text();
  return { status: response.status, endpoint: response.headers.get("x-llmproxy-endpoint"), text };
}

const config = (group: string[], endpoints: string[], settings: string[] = []) =>
  [
    "model_groups:",
    "  - model_group: gpt-test",
    ...group.map((line) => `    ${line}`),
    "    models:",
    ...endpoints,
    "general_settings:",
    "  cache: false",
    ...settings.map((line) => `  ${line}`),
  ].join("\n") + "\n";

/**
 * An upstream that allows `perSecond` requests in each fixed one-second window and answers the rest 429 with
 * `retry-after-ms` up to the window's end, as a provisioned deployment does.
 */
function rateLimitedUpstream(perSecond: number) {
  const startedAt = Date.now();
  let window = -1;
  let used = 0;
  let served = 0;
  let limited = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    await request.body?.cancel();
    const elapsed = Date.now() - startedAt;
    const current = Math.floor(elapsed / 1000);
    if (current !== window) [window, used] = [current, 0];
    if (used >= perSecond) {
      limited++;
      const wait = String((current + 1) * 1000 - elapsed);
      return Response.json({
        error: { message: "Rate limit exceeded", type: "rate_limit_error", code: "429" },
      }, {
        status: 429,
        headers: { "retry-after-ms": wait },
      });
    }
    used++;
    served++;
    return Response.json({
      id: "chatcmpl-ptu",
      object: "chat.completion",
      created: 0,
      model: "gpt",
      choices: [{ index: 0, message: { role: "assistant", content: "ptu" }, finish_reason: "stop" }],
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    served: () => served,
    limited: () => limited,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

test(
  "tiers: a tier-1 endpoint allowing 10/s serves about 10/s of 30/s offered, tier 2 the rest, no client error",
  {
    timeout: 40_000,
  },
  async () => {
    await using ptu = rateLimitedUpstream(10);
    await using payg = await SimUpstream.start({ name: "payg", quiet: true, record: false });
    await using proxy = await startProxy(
      config([], [
        endpointYaml(ptu.url, { name: "ptu", extra: "        priority: 1" }),
        endpointYaml(payg.url, { name: "payg", extra: "        priority: 2" }),
      ], ["num_retries: 3"]),
      { logLevel: "error" },
    );
    const started = Date.now();
    const answers: Promise<{ status: number; endpoint: string | null; text: string }>[] = [];
    for (let i = 0; i < 150; i++) {
      const due = started + Math.round(i * 1000 / 30);
      if (due > Date.now()) await delay(due - Date.now());
      answers.push(chat(proxy.url));
    }
    const results = await Promise.all(answers);
    const elapsed = (Date.now() - started) / 1000;
    const bad = results.filter((r) => r.status !== 200);
    assert.equal(bad.length, 0, bad.map((r) => `${r.status} ${r.text}`).join("\n"));
    const byPtu = results.filter((r) => r.endpoint === "ptu").length;
    const byPayg = results.filter((r) => r.endpoint === "payg").length;
    assert.equal(byPtu, ptu.served());
    assert.equal(byPtu + byPayg, 150);
    // 10 per started second of the run; a loaded machine may stretch the run or leave a window partly unused.
    assert.ok(byPtu >= 35 && byPtu <= 10 * Math.ceil(elapsed + 1), `tier 1 served ${byPtu} in ${elapsed}s`);
    assert.ok(ptu.limited() > 0, "tier 1 was asked beyond its limit");
    console.log(`tier 1: ${byPtu} (${(byPtu / elapsed).toFixed(1)}/s), tier 2: ${byPayg}, over ${elapsed}s`);

    // Once its Retry-After has passed, tier 1 takes everything again while it has capacity.
    await delay(1100);
    for (let i = 0; i < 8; i++) {
      assert.equal((await chat(proxy.url)).endpoint, "ptu", `request ${i} after the burst`);
    }

    const stats = await (await fetch(`${proxy.url}/stats`)).json();
    const view = (id: string) => stats.endpoints.find((e: { id: string }) => e.id === id);
    assert.equal(view("ptu").tier, 1);
    assert.equal(view("payg").tier, 2);
    assert.equal(view("payg").priority, 2);
    assert.equal(view("ptu").in_flight, 0);
    assert.equal(typeof view("ptu").ttfb_average_ms, "number");
  },
);

test("latency: two endpoints, one 200 ms slower: at least 90% go to the fast one", async () => {
  await using fast = await SimUpstream.start({ name: "fast", quiet: true });
  await using slow = await SimUpstream.start({ name: "slow", quiet: true, latencyMs: 200 });
  await using proxy = await startProxy(config(["routing: latency"], [
    endpointYaml(slow.url, { name: "slow" }),
    endpointYaml(fast.url, { name: "fast" }),
  ]));
  const served: string[] = [];
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let i = 0; i < 25; i++) {
      const answer = await chat(proxy.url);
      assert.equal(answer.status, 200, answer.text);
      served.push(answer.endpoint!);
    }
  }));
  const toFast = served.filter((id) => id === "fast").length;
  assert.ok(toFast >= 90, `fast served ${toFast} of 100`);
  assert.ok(slow.count() >= 1, "the slow one was measured at least once");
  console.log(`latency: fast ${toFast} of 100, slow ${100 - toFast}`);

  const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
  const average = Number(
    metrics.match(/llmproxy_endpoint_ttfb_average_seconds\{group="gpt-test",endpoint="slow"\} (\S+)/)?.[1],
  );
  assert.ok(average >= 0.15, `slow average ${average}s`);
  assert.match(metrics, /llmproxy_endpoint_tier\{group="gpt-test",endpoint="fast"\} 1/);
});

test("least_busy: with one endpoint holding 20 slow streams, new requests go to the other", async () => {
  await using busy = await SimUpstream.start({ name: "busy", quiet: true, chunks: 20, chunkDelayMs: 300 });
  await using idle = await SimUpstream.start({ name: "idle", quiet: true });
  await using proxy = await startProxy(
    config(["routing: least_busy"], [
      endpointYaml(busy.url, { name: "busy" }),
      endpointYaml(idle.url, { name: "idle" }),
    ], ["allowed_fails: 1000"]),
    { logLevel: "error" },
  );
  // While `idle` fails, every stream ends up on `busy` (a failed attempt moves on at once).
  idle.always({ kind: "status", status: 500 });
  const streams: ReadableStream<Uint8Array>[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: chatBody({ stream: true }),
      });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-llmproxy-endpoint"), "busy");
      streams.push(response.body!);
    }
    idle.always({ kind: "ok" });
    const stats = await (await fetch(`${proxy.url}/stats`)).json();
    const busyView = stats.endpoints.find((e: { id: string }) => e.id === "busy");
    assert.equal(busyView.in_flight, 20);
    const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
    assert.match(metrics, /llmproxy_endpoint_in_flight\{group="gpt-test",endpoint="busy"\} 20/);
    for (let i = 0; i < 10; i++) {
      const answer = await chat(proxy.url);
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.endpoint, "idle", `request ${i}`);
    }
  } finally {
    await Promise.all(streams.map((stream) => stream.cancel()));
  }
  // Cancelled streams leave the count.
  for (let i = 0; i < 50 && proxy.services.balancer.load.inFlight("busy") > 0; i++) await delay(20);
  assert.equal(proxy.services.balancer.load.inFlight("busy"), 0);
});
