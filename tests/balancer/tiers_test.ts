import assert from "node:assert/strict";
import type { EndpointConfig, GroupConfig, RoutingStrategy } from "../../src/config/config.ts";
import { EndpointLoad } from "../../src/balancer/load.ts";
import { chooseInTier, LATENCY_PROBE_SHARE } from "../../src/balancer/strategy.ts";
import { bestTier, tierNumbers } from "../../src/balancer/tiers.ts";
import { SmoothWeighted } from "../../src/balancer/weighted.ts";
import { test } from "../_support/test.ts";

const endpoint = (id: string, weight = 1, priority = 0): EndpointConfig => ({
  id,
  group: "g",
  model: "m",
  weight,
  priority,
  provider: "openai",
  baseUrl: "http://127.0.0.1:1",
  apiKey: "k",
  timeoutMs: 1000,
  headers: {},
});

const wrap = (...endpoints: EndpointConfig[]) => endpoints.map((e) => ({ endpoint: e }));
const ids = (picks: { endpoint: EndpointConfig }[]) => picks.map((p) => p.endpoint.id);

test("the best tier is the lowest priority among weighted endpoints; weight 0 only when no tier can serve", () => {
  const ptu = endpoint("ptu", 3, 0), ptu2 = endpoint("ptu2", 1, 0), payg = endpoint("payg", 1, 1);
  const last = endpoint("last", 0, -5), last2 = endpoint("last2", 0, -6);
  assert.deepEqual(ids(bestTier(wrap(payg, ptu, last, ptu2), false)), ["ptu", "ptu2"]);
  assert.deepEqual(ids(bestTier(wrap(payg, last), false)), ["payg"]);
  // Weight-0 endpoints one at a time, by priority then file order.
  assert.deepEqual(ids(bestTier(wrap(last, last2), false)), ["last2"]);
  assert.deepEqual(ids(bestTier(wrap(endpoint("x", 0), endpoint("y", 0)), false)), ["x"]);
  // A group of weight-0 endpoints only: they serve as equals, tiered by priority.
  assert.deepEqual(ids(bestTier(wrap(endpoint("x", 0), endpoint("y", 0), endpoint("z", 0, 1)), true)), [
    "x",
    "y",
  ]);
  assert.deepEqual(bestTier([], false), []);
});

test("tier numbers: 1 for the preferred tier, weight-0 endpoints after every tier, each its own", () => {
  const group: GroupConfig = {
    name: "g",
    endpoints: [endpoint("payg", 1, 5), endpoint("ptu", 1, -1), endpoint("fb", 0), endpoint("ptu2", 2, -1)],
  };
  assert.deepEqual(Object.fromEntries(tierNumbers(group)), { ptu: 1, ptu2: 1, payg: 2, fb: 3 });
  const only = { name: "g", endpoints: [endpoint("a", 0, 1), endpoint("b", 0)] };
  assert.deepEqual(Object.fromEntries(tierNumbers(only)), { a: 2, b: 1 });
});

function context(strategy: RoutingStrategy, load = new EndpointLoad(), random = () => 0.5) {
  return { strategy, rotation: new SmoothWeighted(), load, random };
}

test("weighted: weights share the tier 3:1", () => {
  const tier = wrap(endpoint("a", 3), endpoint("b", 1));
  const ctx = context("weighted");
  const picks = Array.from({ length: 8 }, () => chooseInTier(tier, ctx).endpoint.id);
  assert.equal(picks.filter((id) => id === "a").length, 6);
});

test("least_busy: the fewest in flight; ties shared by weight", () => {
  const load = new EndpointLoad();
  const tier = wrap(endpoint("a", 1), endpoint("b", 3));
  const ctx = context("least_busy", load);
  const held = Array.from({ length: 20 }, () => load.start("a"));
  for (let i = 0; i < 5; i++) assert.equal(chooseInTier(tier, ctx).endpoint.id, "b");
  held.forEach((lease) => lease.end());
  held[0].end(); // a second end of the same lease does nothing
  assert.equal(load.inFlight("a"), 0);
  const picks = Array.from({ length: 8 }, () => chooseInTier(tier, ctx).endpoint.id);
  assert.equal(picks.filter((id) => id === "b").length, 6, picks.join());
});

test("latency: unmeasured endpoints first, then the quickest average; a 2% share probes the others", () => {
  const load = new EndpointLoad();
  const tier = wrap(endpoint("fast"), endpoint("slow"), endpoint("new"));
  let draw = 0.5;
  const ctx = context("latency", load, () => draw);
  load.start("fast").firstByte(20);
  load.start("slow").firstByte(220);
  assert.equal(chooseInTier(tier, ctx).endpoint.id, "new");
  // While its first attempt is out, an unmeasured endpoint is not chosen again.
  const first = load.start("new");
  assert.equal(chooseInTier(tier, ctx).endpoint.id, "fast");
  first.firstByte(500);
  first.end();
  assert.equal(chooseInTier(tier, ctx).endpoint.id, "fast");
  // The average moves by a quarter of each new sample's difference.
  load.start("fast").firstByte(60);
  assert.equal(load.latencyMs("fast"), 30);
  draw = LATENCY_PROBE_SHARE - 0.001; // below the probe share: one of the others (then the second draw picks)
  assert.notEqual(chooseInTier(tier, ctx).endpoint.id, "fast");
  draw = LATENCY_PROBE_SHARE;
  assert.equal(chooseInTier(tier, ctx).endpoint.id, "fast");
  // Over a seeded run, the probe share stays at most 3%.
  let seed = 7;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const seeded = context("latency", load, random);
  let others = 0;
  for (let i = 0; i < 10_000; i++) if (chooseInTier(tier, seeded).endpoint.id !== "fast") others++;
  assert.ok(others > 100 && others < 300, `probes: ${others} of 10000`);
});
