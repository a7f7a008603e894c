/**
 * Rate-limit awareness end to end: rpm/tpm budgets shared by instances, upstream `x-ratelimit-*` headers, 429
 * retry times, and what `/stats` shows. Budget windows are 60 s: the proxy gets a clock placed at a known point of
 * a window (the real clock plus an offset), so no test waits for a window to pass.
 */

import assert from "node:assert/strict";
import { type Clock, systemClock } from "../../src/core/clock.ts";
import { BUDGET_WINDOW_MS, windowEnd } from "../../src/ratelimit/budget.ts";
import { type Behaviour, SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  // deno-lint-ignore no-explicit-any
  json(): any;
}

async function chat(url: string, extra: Record<string, unknown> = {}): Promise<Reply> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }], ...extra }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
}

// deno-lint-ignore no-explicit-any
async function statsOf(url: string, id: string): Promise<any> {
  const stats = await (await fetch(`${url}/stats`)).json();
  return stats.endpoints.find((endpoint: { id: string }) => endpoint.id === id);
}

/** The proxy's clock: real time shifted so that the test starts `intoMs` after a budget window began. */
function windowClock(intoMs = 500) {
  const real = Date.now();
  let offset = windowEnd(real, BUDGET_WINDOW_MS) + intoMs - real;
  const clock: Clock = { now: () => Date.now() + offset, sleep: systemClock.sleep };
  return {
    clock,
    /** End of the window the proxy is in now. */
    end: () => windowEnd(clock.now(), BUDGET_WINDOW_MS),
    /** Moves the proxy's time forward to `ms` before the end of its current window. */
    toEndMinus(ms: number) {
      offset += windowEnd(clock.now(), BUDGET_WINDOW_MS) - ms - clock.now();
    },
  };
}

const OK: Behaviour = { kind: "ok" };
const TOO_MANY: Behaviour = { kind: "status", status: 429, headers: { "retry-after": "30" } };

/** A sim that, like an endpoint with a limit of 5 requests a window, answers 5 and then only 429s. */
async function fiveThen429(name: string): Promise<SimUpstream> {
  const sim = await SimUpstream.start({ name, quiet: true });
  sim.next(OK, OK, OK, OK, OK);
  sim.always(TOO_MANY);
  return sim;
}

const rpm5 = "          rpm: 5";

test("rpm budgets: 10 requests over two endpoints allowing 5 each all succeed; the 11th is a 429 until the window ends", async () => {
  await using a = await fiveThen429("a");
  await using b = await fiveThen429("b");
  const time = windowClock();
  await using proxy = await startProxy(
    groupYaml([
      endpointYaml(a.url, { name: "a", extra: rpm5 }),
      endpointYaml(b.url, { name: "b", extra: rpm5 }),
    ]),
    { clock: time.clock },
  );
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) statuses.push((await chat(proxy.url)).status);
  assert.deepEqual(statuses, Array(10).fill(200));
  assert.equal(a.count(), 5);
  assert.equal(b.count(), 5);

  const eleventh = await chat(proxy.url);
  assert.equal(eleventh.status, 429, eleventh.text);
  const expected = Math.ceil((time.end() - time.clock.now()) / 1000);
  const retryAfter = Number(eleventh.headers.get("retry-after"));
  assert.ok(Math.abs(retryAfter - expected) <= 1, `Retry-After ${retryAfter}, window ends in ${expected}s`);
  const { error } = eleventh.json();
  assert.equal(error.code, "no_healthy_endpoint");
  assert.match(error.message, /a: rate limited/);
  assert.match(error.message, /b: rate limited/);
  assert.equal(a.count() + b.count(), 10, "the 11th never went upstream");

  // Close to the window's end a request waits (max_wait_for_capacity, 2 s) and is served in the next window.
  time.toEndMinus(600);
  a.next(OK);
  b.next(OK);
  const started = Date.now();
  const twelfth = await chat(proxy.url);
  assert.equal(twelfth.status, 200, twelfth.text);
  assert.ok(Date.now() - started >= 450, "waited for the next window");
  assert.equal(a.count() + b.count(), 11);
});

test({
  name: "rpm budgets are shared by two proxy instances on one Redis",
  ignore: !hasRedis,
  async fn() {
    await using redis = await startRedis();
    await using a = await fiveThen429("a");
    await using b = await fiveThen429("b");
    const time = windowClock();
    const yaml = groupYaml(
      [endpointYaml(a.url, { name: "a", extra: rpm5 }), endpointYaml(b.url, { name: "b", extra: rpm5 })],
      [`redis_url: ${redis.url}`],
    );
    await using first = await startProxy(yaml, { clock: time.clock });
    await using second = await startProxy(yaml, { clock: time.clock });
    // Five at once through each instance: each alone would send 3 to one endpoint and 2 to the other.
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) => chat((i % 2 === 0 ? first : second).url)),
    );
    assert.deepEqual(replies.map((reply) => reply.status), Array(10).fill(200));
    assert.equal(a.count(), 5, "no endpoint got more than its 5");
    assert.equal(b.count(), 5, "no endpoint got more than its 5");
    for (const proxy of [first, second]) {
      const refused = await chat(proxy.url);
      assert.equal(refused.status, 429);
      const expected = Math.ceil((time.end() - time.clock.now()) / 1000);
      assert.ok(Math.abs(Number(refused.headers.get("retry-after")) - expected) <= 1);
    }
    assert.equal(a.count() + b.count(), 10);
    const stats = await statsOf(second.url, "a");
    assert.deepEqual(stats.budget.rpm, { used: 5, limit: 5 });
  },
});

test("x-ratelimit-remaining-requests 0 steers traffic to the other endpoint until the reset; the headers reach the client", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(a.url, { name: "a" }),
    endpointYaml(b.url, { name: "b" }),
  ]));
  a.responseHeaders = {
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": "2s",
  };
  b.responseHeaders = { "x-ratelimit-remaining-requests": "59", "x-ratelimit-remaining-tokens": "1000" };
  const first = await chat(proxy.url, { stream: true });
  assert.equal(first.status, 200);
  assert.equal(first.headers.get("x-llmproxy-endpoint"), "a");
  assert.equal(first.headers.get("x-ratelimit-remaining-requests"), "0");
  assert.equal(first.headers.get("x-ratelimit-reset-requests"), "2s");
  for (let i = 0; i < 4; i++) {
    const reply = await chat(proxy.url);
    assert.equal(reply.headers.get("x-llmproxy-endpoint"), "b");
    assert.equal(reply.headers.get("x-ratelimit-remaining-requests"), "59");
    assert.equal(reply.headers.get("x-ratelimit-remaining-tokens"), "1000");
  }
  assert.equal(a.count(), 1);
  const stats = await statsOf(proxy.url, "a");
  assert.equal(stats.state, "cooling_down");
  assert.equal(stats.cooldown_reason, "rate_limit");
  const left = Date.parse(stats.cooldown_until) - Date.now();
  assert.ok(left > 500 && left <= 2000, `skipped for the 2 s until the reset, got ${left} ms`);
  assert.equal(stats.rate_limit.remaining_requests, 0);
});

test("Azure's -1 and malformed rate-limit headers change nothing", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(a.url, { name: "a" }),
    endpointYaml(b.url, { name: "b" }),
  ]));
  const variants: Record<string, string>[] = [
    {
      "x-ratelimit-remaining-requests": "-1",
      "x-ratelimit-remaining-tokens": "-1",
      "x-ratelimit-reset-requests": "1s",
      "x-ratelimit-reset-tokens": "1s",
    },
    {
      "x-ratelimit-remaining-requests": "zero",
      "x-ratelimit-reset-requests": "soon",
      "x-ratelimit-remaining-tokens": "",
      "x-ratelimit-reset-tokens": "-1s",
      "x-ratelimit-limit-requests": "NaN",
    },
    // 0 left but no readable reset: nothing to wait for.
    { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1 minute" },
    { "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s garbage" },
  ];
  for (const headers of variants) {
    a.responseHeaders = headers;
    const served: string[] = [];
    for (let i = 0; i < 4; i++) {
      const reply = await chat(proxy.url);
      assert.equal(reply.status, 200, JSON.stringify(headers));
      served.push(reply.headers.get("x-llmproxy-endpoint")!);
    }
    assert.deepEqual(served.toSorted(), ["a", "a", "b", "b"], JSON.stringify(headers));
  }
  assert.equal((await statsOf(proxy.url, "a")).state, "available");
});

test("/stats shows the last rate-limit headers, the budget use and the cooldown", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  const time = windowClock();
  await using proxy = await startProxy(
    groupYaml([
      endpointYaml(a.url, { name: "a", extra: "          rpm: 10\n          tpm: 5000" }),
      endpointYaml(b.url, { name: "b", weight: 0 }),
    ]),
    { clock: time.clock },
  );
  a.responseHeaders = {
    "x-ratelimit-limit-requests": "100",
    "x-ratelimit-remaining-requests": "42",
    "x-ratelimit-reset-requests": "6m0s",
    "x-ratelimit-limit-tokens": "20000",
    "x-ratelimit-remaining-tokens": "19000",
    "x-ratelimit-reset-tokens": "12ms",
  };
  let tokens = 0;
  for (let i = 0; i < 3; i++) {
    const reply = await chat(proxy.url, { max_tokens: 100 });
    assert.equal(reply.headers.get("x-llmproxy-endpoint"), "a");
    tokens += reply.json().usage.total_tokens;
  }
  const stats = await statsOf(proxy.url, "a");
  assert.equal(stats.state, "available");
  assert.equal(stats.cooldown_reason, null);
  const { rate_limit: limits, budget } = stats;
  assert.equal(limits.limit_requests, 100);
  assert.equal(limits.remaining_requests, 42);
  assert.equal(limits.limit_tokens, 20000);
  assert.equal(limits.remaining_tokens, 19000);
  const observed = Date.parse(limits.observed_at);
  assert.ok(Math.abs(observed - time.clock.now()) < 2000);
  assert.equal(Date.parse(limits.reset_requests_at) - observed, 360_000);
  assert.equal(Date.parse(limits.reset_tokens_at) - observed, 12);
  assert.equal(budget.window_seconds, 60);
  assert.equal(Date.parse(budget.window_ends_at), time.end());
  assert.deepEqual(budget.rpm, { used: 3, limit: 10 });
  // Charged from the estimate, then corrected to what the answers' usage reported.
  assert.deepEqual(budget.tpm, { used: tokens, limit: 5000 });

  const plain = await statsOf(proxy.url, "b");
  assert.equal(plain.budget, null);
  assert.equal(plain.rate_limit, null);

  a.next({ kind: "status", status: 429, headers: { "retry-after": "9" } });
  await chat(proxy.url);
  const cooling = await statsOf(proxy.url, "a");
  assert.equal(cooling.state, "cooling_down");
  assert.equal(cooling.cooldown_reason, "rate_limit");
  assert.ok(Date.parse(cooling.cooldown_until) - time.clock.now() > 7000);
});

test("a 429's retry-after-ms, x-ms-retry-after-ms, HTTP-date retry-after or rate-limit reset sets the cooldown", async () => {
  // A retry time in ms or seconds counts from when the proxy read the 429, some time between the request's send and
  // its answer; an HTTP date is a deadline of its own (whole seconds: made when its 429 is queued, it is up to 1 s
  // short of 5 s). The cooldown's end is checked against those instants, not against the clock when /stats is read
  // later (seconds later on a loaded machine).
  const variants: [() => Record<string, string>, number | "date"][] = [
    [() => ({ "retry-after-ms": "1500" }), 1500],
    [() => ({ "x-ms-retry-after-ms": "2500" }), 2500],
    [() => ({ "retry-after": new Date(Date.now() + 5000).toUTCString() }), "date"],
    [() => ({ "retry-after": "4" }), 4000],
    // No retry time: the reset of the spent limit rather than cooldown_time (30 s here).
    [() => ({ "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "3s" }), 3000],
  ];
  for (const [makeHeaders, expected] of variants) {
    await using a = await SimUpstream.start({ name: "a", quiet: true });
    await using b = await SimUpstream.start({ name: "b", quiet: true });
    await using proxy = await startProxy(groupYaml([
      endpointYaml(a.url, { name: "a", weight: 1 }),
      endpointYaml(b.url, { name: "b", weight: 0 }),
    ]));
    const headers = makeHeaders();
    a.next({ kind: "status", status: 429, headers });
    const sent = Date.now();
    const reply = await chat(proxy.url);
    const answered = Date.now();
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get("x-llmproxy-endpoint"), "b");
    const stats = await statsOf(proxy.url, "a");
    assert.equal(stats.cooldown_reason, "rate_limit", JSON.stringify(headers));
    const until = Date.parse(stats.cooldown_until);
    const [earliest, latest] = expected === "date"
      ? [Date.parse(headers["retry-after"]), Date.parse(headers["retry-after"]) + 20]
      : [sent + expected, answered + expected];
    assert.ok(
      until >= earliest && until <= latest,
      `${JSON.stringify(headers)}: cooldown ends ${until - sent} ms after the send, expected ${
        earliest - sent
      }-${latest - sent}`,
    );
  }
});

test("a shorter 429 retry time never shortens a longer cooldown already set", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true, latencyMs: 600 });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(a.url, { name: "a", weight: 1 }),
    endpointYaml(b.url, { name: "b", weight: 0 }),
  ]));
  // Two requests in flight at a at once: the first comes back with 20 s, the second, later, with 0.5 s.
  a.next(
    { kind: "status", status: 429, headers: { "retry-after": "20" } },
    { kind: "status", status: 429, headers: { "retry-after-ms": "500" } },
  );
  const first = chat(proxy.url);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const second = chat(proxy.url);
  const replies = await Promise.all([first, second]);
  assert.deepEqual(replies.map((reply) => reply.headers.get("x-llmproxy-endpoint")), ["b", "b"]);
  assert.equal(a.count(), 2);
  const stats = await statsOf(proxy.url, "a");
  const left = Date.parse(stats.cooldown_until) - Date.now();
  assert.ok(left > 18_000, `the 20 s cooldown stands, got ${left} ms`);
});

test("a streamed answer's usage report corrects the tpm budget, for chat and Responses", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  const time = windowClock();
  await using proxy = await startProxy(
    groupYaml([endpointYaml(a.url, { name: "a", extra: "          tpm: 50000" })]),
    { clock: time.clock },
  );
  const post = async (path: string, body: Record<string, unknown>) => {
    const response = await fetch(`${proxy.url}${path}`, { method: "POST", body: JSON.stringify(body) });
    return await response.text();
  };
  const chatText = await post("/v1/chat/completions", {
    model: "gpt-test",
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: 2000,
    messages: [{ role: "user", content: "count me" }],
  });
  const chatUsage = chatText.split("\n").filter((line) => line.includes('"usage":{'))
    .map((line) => JSON.parse(line.slice(6)).usage.total_tokens).at(-1);
  assert.ok(chatUsage > 0 && chatUsage < 2000, `usage ${chatUsage}`);
  await delay(50);
  assert.deepEqual((await statsOf(proxy.url, "a")).budget.tpm, { used: chatUsage, limit: 50000 });

  const responsesText = await post("/v1/responses", {
    model: "gpt-test",
    stream: true,
    max_output_tokens: 3000,
    input: "count me too",
  });
  const completed = responsesText.split("\n").filter((line) => line.includes('"response.completed"'))
    .map((line) => JSON.parse(line.slice(6))).at(-1);
  const responsesUsage = completed.response.usage.total_tokens;
  await delay(50);
  assert.deepEqual((await statsOf(proxy.url, "a")).budget.tpm, {
    used: chatUsage + responsesUsage,
    limit: 50000,
  });
});

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
