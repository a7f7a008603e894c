/**
 * A plan's first pick made at once (`nextNow`, no promise) when the store holds health in this process: it picks
 * as `next()` would, and where it cannot (a budget to charge, a store elsewhere, the plan used up) it changes
 * nothing, so `next()` makes the same choice it would have made alone.
 */

import assert from "node:assert/strict";
import { Balancer } from "../../src/balancer/balancer.ts";
import type { EndpointConfig, GroupConfig } from "../../src/config/config.ts";
import { HealthTracker } from "../../src/health/tracker.ts";
import { createLogger } from "../../src/logger.ts";
import { Budgets } from "../../src/ratelimit/budget.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { Store } from "../../src/store/store.ts";
import { testEndpoint } from "../_support/endpoint.ts";
import { test } from "../_support/test.ts";

const quiet = createLogger({ level: "error", write: () => {} });
const now = () => 1_800_000_000_000;

const endpoint = (id: string, weight: number, rpm?: number): EndpointConfig =>
  testEndpoint(id, rpm ? { weight, rpm } : { weight });

function balancer(store: Store = new MemoryStore(), withBudgets = false): Balancer {
  const health = new HealthTracker(store, { allowedFails: 1, cooldownMs: 30_000 }, now, quiet);
  const budgets = withBudgets ? new Budgets(store, { now, logger: quiet }) : undefined;
  return new Balancer(health, { now, sleep: () => Promise.resolve() }, budgets);
}

const options = { maxAttempts: 1, maxWaitMs: 0 };

/** The ids `count` plans pick through `next()` alone. */
async function picksByNext(b: Balancer, group: GroupConfig, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await b.plan(group, options).next())!.endpoint.id);
  return ids;
}

test("the first pick is made at once on the in-memory store, as next() would make it", async () => {
  const group: GroupConfig = { name: "g", endpoints: [endpoint("a", 3), endpoint("b", 1)] };
  const expected = await picksByNext(balancer(), group, 12);
  const b = balancer();
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) {
    const plan = b.plan(group, options);
    const pick = plan.nextNow();
    assert.ok(pick, `pick ${i} made at once`);
    ids.push(pick.endpoint.id);
    assert.equal(plan.attempts, 1);
    assert.equal(plan.nextNow(), undefined, "the plan is used up");
    assert.equal(await plan.next(), undefined);
    pick.lease.end();
  }
  assert.deepEqual(ids, expected);
  assert.deepEqual(ids.filter((id) => id === "a").length, 9);
});

test("nextNow changes nothing where it cannot pick: a budget to charge, health kept elsewhere", async () => {
  const group: GroupConfig = { name: "g", endpoints: [endpoint("a", 3, 1_000_000), endpoint("b", 1)] };
  const expected = await picksByNext(balancer(new MemoryStore(), true), group, 8);
  const budgeted = balancer(new MemoryStore(), true);
  const ids: string[] = [];
  for (let i = 0; i < 8; i++) {
    const plan = budgeted.plan(group, options);
    assert.equal(plan.nextNow(), undefined, "a budget is charged by next()");
    const pick = await plan.next();
    ids.push(pick!.endpoint.id);
    assert.equal(pick!.reservation !== undefined, pick!.endpoint.id === "a");
  }
  assert.deepEqual(ids, expected, "the rotation moved once per plan");

  // A store that reads health only asynchronously (as Redis does): no pick at once; next() reads it.
  const plain: GroupConfig = { name: "p", endpoints: [endpoint("c", 1), endpoint("d", 1)] };
  const memory = new MemoryStore({ now });
  const remote = new Proxy(memory, {
    get: (target, key) => {
      if (key === "readHealthNow") return undefined;
      const value = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as Store;
  await memory.coolDown("c", 60_000, "rate_limit"); // read through readHealth: c is skipped

  const plan = balancer(remote).plan(plain, options);
  assert.equal(plan.nextNow(), undefined);
  assert.equal((await plan.next())?.endpoint.id, "d");
});
