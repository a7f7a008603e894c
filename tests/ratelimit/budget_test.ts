import assert from "node:assert/strict";
import { Balancer } from "../../src/balancer/balancer.ts";
import type { Clock } from "../../src/core/clock.ts";
import type { EndpointConfig, GroupConfig } from "../../src/config/config.ts";
import { HealthTracker } from "../../src/health/tracker.ts";
import { createLogger } from "../../src/logger.ts";
import {
  budgetCounters,
  Budgets,
  DEFAULT_OUTPUT_TOKENS,
  estimateTokens,
  usageTokens,
  windowEnd,
  windowStart,
  withBudget,
} from "../../src/ratelimit/budget.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { HEALTHY, type Store } from "../../src/store/store.ts";
import { testEndpoint } from "../_support/endpoint.ts";
import { test } from "../_support/test.ts";

const T = 31_666_666 * 60_000; // a window starts here (2030-03-17)
const quiet = createLogger({ level: "error", write: () => {} });

function endpoint(id: string, limits: { rpm?: number; tpm?: number } = {}, weight = 1): EndpointConfig {
  return testEndpoint(id, { weight, ...limits });
}

test("windowStart and windowEnd: fixed windows aligned on multiples of the window length", () => {
  const table: [now: number, windowMs: number, start: number, end: number][] = [
    [T, 60_000, T, T + 60_000],
    [T + 1, 60_000, T, T + 60_000],
    [T + 59_999, 60_000, T, T + 60_000],
    [T + 60_000, 60_000, T + 60_000, T + 120_000],
    [T - 1, 60_000, T - 60_000, T],
    [T + 1500, 1000, T + 1000, T + 2000],
    [0, 60_000, 0, 60_000],
  ];
  for (const [now, windowMs, start, end] of table) {
    assert.equal(windowStart(now, windowMs), start, `start of ${now - T} in ${windowMs}`);
    assert.equal(windowEnd(now, windowMs), end, `end of ${now - T} in ${windowMs}`);
  }
});

test("estimateTokens: prompt chars / 4 plus the output limit asked for, else the default", () => {
  const messages = [{ role: "user", content: "x".repeat(100) }];
  const promptTokens = Math.ceil(JSON.stringify(messages).length / 4);
  const table: [string, Parameters<typeof estimateTokens>[0], Record<string, unknown>, number][] = [
    ["chat, no limit", "chat", { messages }, promptTokens + DEFAULT_OUTPUT_TOKENS],
    ["chat, max_tokens", "chat", { messages, max_tokens: 50 }, promptTokens + 50],
    [
      "chat, max_completion_tokens wins",
      "chat",
      { messages, max_completion_tokens: 70, max_tokens: 50 },
      promptTokens + 70,
    ],
    ["responses, string input", "responses", { input: "y".repeat(40), max_output_tokens: 10 }, 10 + 10],
    ["responses, instructions count", "responses", {
      input: "abcd",
      instructions: "efgh",
      max_output_tokens: 0,
    }, 2],
    ["embeddings: no output", "embeddings", { input: "z".repeat(41) }, 11],
    ["no prompt at all", "chat", {}, DEFAULT_OUTPUT_TOKENS],
    [
      "malformed limits ignored",
      "chat",
      { max_tokens: "lots", max_output_tokens: -5 },
      DEFAULT_OUTPUT_TOKENS,
    ],
    ["non-finite limit ignored", "chat", { max_tokens: Infinity }, DEFAULT_OUTPUT_TOKENS],
  ];
  for (const [name, route, body, expected] of table) {
    assert.equal(estimateTokens(route, body), expected, name);
  }
});

test("usageTokens reads chat, Responses and embeddings usage; junk is undefined", () => {
  const table: [string, unknown, number | undefined][] = [
    ["total_tokens", { usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } }, 7],
    ["chat parts", { usage: { prompt_tokens: 3, completion_tokens: 4 } }, 7],
    ["responses parts", { usage: { input_tokens: 10, output_tokens: 5 } }, 15],
    ["embeddings", { usage: { prompt_tokens: 8, total_tokens: 8 } }, 8],
    ["only input", { usage: { input_tokens: 9 } }, 9],
    ["no usage", { id: "x" }, undefined],
    ["usage null", { usage: null }, undefined],
    ["usage strings", { usage: { total_tokens: "7" } }, undefined],
    ["negative", { usage: { total_tokens: -1 } }, undefined],
    ["not an object", "text", undefined],
    ["array", [1, 2], undefined],
    ["null", null, undefined],
  ];
  for (const [name, answer, expected] of table) assert.equal(usageTokens(answer), expected, name);
});

test("budgetCounters charges one request to rpm and the estimate to tpm, only those configured", () => {
  const table: [{ rpm?: number; tpm?: number }, number, ReturnType<typeof budgetCounters>][] = [
    [{}, 100, []],
    [{ rpm: 5 }, 100, [{ name: "rpm", amount: 1, limit: 5 }]],
    [{ tpm: 1000 }, 100, [{ name: "tpm", amount: 100, limit: 1000 }]],
    [{ rpm: 5, tpm: 1000 }, 100, [{ name: "rpm", amount: 1, limit: 5 }, {
      name: "tpm",
      amount: 100,
      limit: 1000,
    }]],
    [{ tpm: 1000 }, -3, [{ name: "tpm", amount: 0, limit: 1000 }]],
  ];
  for (const [limits, tokens, expected] of table) {
    assert.deepEqual(budgetCounters(endpoint("e", limits), tokens), expected, JSON.stringify(limits));
  }
});

test("withBudget: a spent budget shows as a rate-limit cooldown until the window ends, never shorter", () => {
  const cooling = { failures: 1, cooldownUntil: T + 5000, reason: "failures" as const };
  const table: [string, typeof cooling | typeof HEALTHY, number, unknown][] = [
    ["not blocked", HEALTHY, 0, HEALTHY],
    ["blocked", HEALTHY, T + 60_000, { failures: 0, cooldownUntil: T + 60_000, reason: "rate_limit" }],
    ["longer cooldown wins", cooling, T + 1000, cooling],
    ["longer block wins", cooling, T + 9000, { failures: 1, cooldownUntil: T + 9000, reason: "rate_limit" }],
  ];
  for (const [name, health, blocked, expected] of table) {
    assert.deepEqual(withBudget(health, blocked), expected, name);
  }
});

test("Budgets: admits up to rpm, then blocks until the window ends, then admits again", async () => {
  let now = T + 10_000;
  const store = new MemoryStore({ now: () => now });
  const budgets = new Budgets(store, { now: () => now, logger: quiet });
  const e = endpoint("e", { rpm: 2 });
  assert.ok(await budgets.reserve(e, 0));
  assert.ok(await budgets.reserve(e, 0));
  assert.equal(budgets.blockedUntil(e, now), 0);
  assert.equal(await budgets.reserve(e, 0), undefined);
  assert.equal(budgets.blockedUntil(e, now), T + 60_000);
  assert.deepEqual(await budgets.use(e), { windowEndsAt: T + 60_000, rpm: { used: 2, limit: 2 } });
  now = T + 60_000;
  assert.equal(budgets.blockedUntil(e, now), 0);
  assert.deepEqual(await budgets.reserve(e, 0), { endpoint: e, windowStart: T + 60_000, tokens: 0 });
});

test("Budgets: tpm charged from the estimate and corrected from usage within the window", async () => {
  let now = T + 1000;
  const store = new MemoryStore({ now: () => now });
  const budgets = new Budgets(store, { now: () => now, logger: quiet });
  const e = endpoint("e", { rpm: 100, tpm: 1000 });
  const first = await budgets.reserve(e, 600);
  assert.deepEqual(first, { endpoint: e, windowStart: T, tokens: 600 });
  assert.equal(await budgets.reserve(e, 500), undefined, "600 + 500 > 1000");
  budgets.settleTokens(first, usageTokens({ usage: { total_tokens: 150 } }));
  await Promise.resolve();
  assert.deepEqual((await budgets.use(e))?.tpm, { used: 150, limit: 1000 });
  // Malformed answers and answers without usage leave the estimate in place.
  const second = await budgets.reserve(e, 200);
  budgets.settleTokens(second, usageTokens("{not json"));
  budgets.settleTokens(second, usageTokens({ id: "no usage" }));
  assert.deepEqual((await budgets.use(e))?.tpm, { used: 350, limit: 1000 });
  // A correction after the window ended is dropped (it would land in the wrong window).
  const third = await budgets.reserve(e, 100);
  now = T + 60_001;
  budgets.settleTokens(third, usageTokens({ usage: { total_tokens: 1 } }));
  assert.deepEqual((await budgets.use(e))?.tpm, { used: 0, limit: 1000 });
  assert.equal(await budgets.use(endpoint("plain")), undefined);
});

test("Budgets: a failing store lets requests through", async () => {
  const store = new MemoryStore();
  const broken = new Proxy(store, {
    get: (target, name) =>
      name === "addToWindows" ? () => Promise.reject(new Error("store down")) : Reflect.get(target, name),
  });
  const lines: string[] = [];
  const budgets = new Budgets(broken, {
    now: () => T,
    logger: createLogger({ write: (line) => lines.push(line) }),
  });
  assert.ok(await budgets.reserve(endpoint("e", { rpm: 1 }), 0));
  assert.ok(await budgets.reserve(endpoint("e", { rpm: 1 }), 0));
  assert.match(lines.join("\n"), /budget check failed/);
});

/** A MemoryStore that counts addToWindows calls. */
function countingStore(now: () => number): { store: Store; calls: () => number } {
  let calls = 0;
  const memory = new MemoryStore({ now });
  const store = new Proxy(memory, {
    get(target, name) {
      const value = Reflect.get(target, name);
      if (name !== "addToWindows") return typeof value === "function" ? value.bind(target) : value;
      return (...args: Parameters<Store["addToWindows"]>) => {
        calls++;
        return target.addToWindows(...args);
      };
    },
  });
  return { store, calls: () => calls };
}

test("the plan skips an endpoint out of budget, charges only budgeted endpoints, and waits for the window", async () => {
  let now = T + 59_000;
  const sleeps: number[] = [];
  const clock: Clock = {
    now: () => now,
    sleep: (ms) => {
      sleeps.push(ms);
      now += ms;
      return Promise.resolve();
    },
  };
  const { store, calls } = countingStore(clock.now);
  const health = new HealthTracker(store, { allowedFails: 1, cooldownMs: 30_000 }, clock.now, quiet);
  const budgets = new Budgets(store, { now: clock.now, logger: quiet });
  const balancer = new Balancer(health, clock, budgets);
  const group: GroupConfig = { name: "g", endpoints: [endpoint("a", { rpm: 1 }), endpoint("b")] };
  const options = { maxAttempts: 2, maxWaitMs: 2000 };

  const picked: string[] = [];
  for (let i = 0; i < 4; i++) {
    const pick = await balancer.plan(group, options).next();
    picked.push(pick!.endpoint.id);
    assert.equal(pick!.reservation !== undefined, pick!.endpoint.id === "a");
  }
  assert.deepEqual(picked, ["a", "b", "b", "b"]);
  assert.equal(calls(), 2, "one charge for a, one refused charge; none for b");

  // Only a: out of budget for the last second of its window; the plan waits for the next window.
  const only: GroupConfig = { name: "only", endpoints: [group.endpoints[0]] };
  const pick = await balancer.plan(only, options).next();
  assert.equal(pick?.endpoint.id, "a");
  assert.deepEqual(sleeps, [1000]);
  assert.equal(pick?.reservation?.windowStart, T + 60_000);

  // Out of budget with the window end beyond max wait: no pick, a 429 whose Retry-After is the window end.
  const plan = balancer.plan(only, options);
  assert.equal(await plan.next(), undefined);
  const error = await plan.exhaustedError();
  assert.equal(error.status, 429);
  assert.equal(error.headers["retry-after"], "60");
  assert.match(error.message, /a: rate limited for 60s/);
});
