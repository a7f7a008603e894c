/**
 * A key's limits over the memory store, with a clock the test moves: the windows (UTC minute, day, calendar
 * month), the 429s with the limit named and Retry-After, budgets charged after the answer, the places among
 * max_parallel given back, and the x-ratelimit-* headers. Prices and usage figures as the ledger reads them.
 */

import assert from "node:assert/strict";
import { KeyLimitError, KeyLimits } from "../../src/keys/limits.ts";
import { buildPolicy } from "../../src/keys/policy.ts";
import { dayWindow, formatDuration, monthWindow } from "../../src/keys/windows.ts";
import { createLogger } from "../../src/logger.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { usageOf } from "../../src/usage/figures.ts";
import { costOf, priceFor } from "../../src/usage/prices.ts";
import { test } from "../_support/test.ts";

const logger = createLogger({ level: "error", write: () => {} });
const T0 = Date.UTC(2026, 11, 31, 23, 58, 10); // 10 s into a minute, near the end of a day, month and year

function setup(fields: Parameters<typeof buildPolicy>[3]) {
  let now = T0;
  const store = new MemoryStore({ now: () => now });
  const limits = new KeyLimits(store, { now: () => now, logger, leaseMs: 60_000 });
  const policy = buildPolicy("team", "d".repeat(64), "config", fields);
  return {
    limits,
    policy,
    advance: (ms: number) => (now += ms),
    flush: () => new Promise((r) => setTimeout(r, 0)),
  };
}

async function refusal(promise: Promise<unknown>): Promise<KeyLimitError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof KeyLimitError) return error;
    throw error;
  }
  assert.fail("admitted");
}

test("windows are UTC; reset durations are written like OpenAI's", () => {
  assert.equal(dayWindow(T0).label, "2026-12-31");
  assert.deepEqual(monthWindow(T0), {
    start: Date.UTC(2026, 11, 1),
    end: Date.UTC(2027, 0, 1),
    label: "2026-12",
  });
  assert.equal(monthWindow(Date.UTC(2027, 1, 28, 12)).end, Date.UTC(2027, 2, 1));
  assert.deepEqual([
    formatDuration(12),
    formatDuration(7000),
    formatDuration(360_000),
    formatDuration(7_380_000),
  ], [
    "12ms",
    "7s",
    "6m0s",
    "2h3m0s",
  ]);
});

test("rpm: refused past the limit with the limit named, Retry-After at the minute's end; headers count down", async () => {
  const { limits, policy, advance } = setup({ rpm: 2 });
  const first = await limits.admit(policy, 0);
  assert.deepEqual(first.headers, {
    "x-ratelimit-limit-requests": "2",
    "x-ratelimit-remaining-requests": "1",
    "x-ratelimit-reset-requests": "50s",
  });
  await limits.admit(policy, 0);
  const error = await refusal(limits.admit(policy, 0));
  assert.equal(error.status, 429);
  assert.equal(error.code, "rate_limit_exceeded");
  assert.equal(error.limit, "rpm");
  assert.equal(error.headers["retry-after"], "50");
  assert.match(error.message, /key 'team': rpm \(2 requests per minute\); try again in 50s/);
  advance(50_000);
  assert.equal((await limits.admit(policy, 0)).headers["x-ratelimit-remaining-requests"], "1");
});

test("tpm: the estimate is charged, then corrected to what the answer used", async () => {
  const { limits, policy, flush } = setup({ tpm: 1000 });
  const admitted = await limits.admit(policy, 900);
  assert.equal(admitted.headers["x-ratelimit-remaining-tokens"], "100");
  limits.settle(admitted, { tokens: 100, usd: 0 });
  await flush();
  assert.equal((await limits.admit(policy, 800)).headers["x-ratelimit-remaining-tokens"], "100");
  assert.equal((await refusal(limits.admit(policy, 200))).limit, "tpm");
});

test("budgets: a request is refused once reported usage reached the budget, until the window renews", async () => {
  const { limits, policy, advance, flush } = setup({ tokens_per_day: 100, usd_per_month: 0.5 });
  const spend = async (tokens: number, usd: number) => {
    limits.settle(await limits.admit(policy, 0), { tokens, usd });
    await flush();
  };
  await spend(60, 0.1);
  await spend(60, 0.1); // crosses the day's budget: served, the next is refused
  const day = await refusal(limits.admit(policy, 0));
  assert.deepEqual([day.code, day.type, day.limit, day.headers["retry-after"]], [
    "insufficient_quota",
    "insufficient_quota",
    "tokens_per_day",
    String((Date.UTC(2027, 0, 1) - T0) / 1000),
  ]);
  advance(120_000); // a new day (and month, and year)
  await spend(10, 0.6);
  assert.equal((await refusal(limits.admit(policy, 0))).limit, "usd_per_month");
});

test("max_parallel: places are held until finish, and given back", async () => {
  const { limits, policy, flush } = setup({ max_parallel: 2 });
  const a = await limits.admit(policy, 0);
  await limits.admit(policy, 0);
  const error = await refusal(limits.admit(policy, 0));
  assert.deepEqual([error.limit, error.headers["retry-after"]], ["max_parallel", "1"]);
  limits.finish(a);
  await flush();
  await limits.admit(policy, 0);
});

test("a key without limits never touches the store", async () => {
  const { limits, policy } = setup({});
  assert.deepEqual((await limits.admit(policy, 5)).headers, {});
});

test("usage figures of every route, and prices by served model, deployment or group", () => {
  const chat = usageOf({
    model: "gpt-4o-2024-08-06",
    usage: {
      prompt_tokens: 100,
      completion_tokens: 50,
      prompt_tokens_details: { cached_tokens: 40 },
      completion_tokens_details: { reasoning_tokens: 20 },
    },
  });
  assert.deepEqual(chat, {
    input: 100,
    cachedInput: 40,
    output: 50,
    reasoning: 20,
    model: "gpt-4o-2024-08-06",
  });
  const responses = usageOf({
    type: "response.completed",
    response: {
      usage: { input_tokens: 10, output_tokens: 5, output_tokens_details: { reasoning_tokens: 2 } },
    },
  });
  assert.deepEqual(responses, { input: 10, cachedInput: 0, output: 5, reasoning: 2 });
  assert.deepEqual(usageOf({ usage: { prompt_tokens: 7, total_tokens: 7 } }), {
    input: 7,
    cachedInput: 0,
    output: 0,
    reasoning: 0,
  });
  assert.equal(usageOf({ usage: null }), undefined);

  const prices = new Map([
    ["gpt-4o", { input: 2.5, cachedInput: 1.25, output: 10 }],
    ["gpt-4o-mini", { input: 0.15, cachedInput: 0.15, output: 0.6 }],
  ]);
  assert.equal(priceFor(prices, ["gpt-4o-2024-08-06", "prod-deployment", "group"]), prices.get("gpt-4o"));
  assert.equal(priceFor(prices, [undefined, "gpt-4o-mini", "group"]), prices.get("gpt-4o-mini"));
  assert.equal(priceFor(prices, ["gpt-4o-mini-2024-07-18"]), prices.get("gpt-4o-mini"), "not gpt-4o's price");
  assert.equal(priceFor(prices, ["o3"]), undefined);
  assert.equal(costOf(prices.get("gpt-4o"), chat!), (60 * 2.5 + 40 * 1.25 + 50 * 10) / 1e6);
  assert.equal(costOf(undefined, chat!), 0);
});
