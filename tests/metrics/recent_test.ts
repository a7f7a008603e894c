/** The dashboard's rolling histories: quantiles, error rates, slot expiry and in-flight counts. */

import assert from "node:assert/strict";
import { RecentWindows, SLOT_MS, SLOTS } from "../../src/metrics/recent.ts";
import { test } from "../_support/test.ts";

test("recent windows: p50/p99 within a bucket's width, error rate per slot, old slots forgotten", () => {
  let now = 1_000 * SLOT_MS;
  const windows = new RecentWindows(() => now);
  for (let i = 1; i <= 100; i++) windows.outcome("a", i * 10, false); // 10 ms .. 1000 ms
  windows.outcome("a", null, true);
  let history = windows.history("a");
  assert.equal(history.attempts.length, SLOTS);
  assert.equal(history.attempts.at(-1), 101);
  const p50 = history.p50_ms.at(-1)!;
  const p99 = history.p99_ms.at(-1)!;
  assert.ok(p50 > 500 / 1.25 && p50 < 500 * 1.25, `p50 ${p50}`);
  assert.ok(p99 > 990 / 1.25 && p99 < 990 * 1.25, `p99 ${p99}`);
  assert.equal(history.error_rate.at(-1), 0.01);
  assert.equal(history.p50_ms.at(-2), null);

  now += SLOT_MS;
  windows.outcome("a", 5, true);
  history = windows.history("a");
  assert.equal(history.attempts.at(-2), 101);
  assert.equal(history.error_rate.at(-1), 1);

  // A whole window later, every slot has rolled over: nothing old is reported, and the ring is reused.
  now += SLOTS * SLOT_MS;
  history = windows.history("a");
  assert.deepEqual(history.attempts, new Array(SLOTS).fill(0));
  assert.equal(windows.firstSlotAt(), now - (SLOTS - 1) * SLOT_MS);
});

test("recent windows: attempts in flight go up and down, never below zero", () => {
  const windows = new RecentWindows();
  windows.started("a");
  windows.started("a");
  assert.equal(windows.inFlight("a"), 2);
  windows.ended("a");
  windows.ended("a");
  windows.ended("a");
  assert.equal(windows.inFlight("a"), 0);
  assert.equal(windows.inFlight("unknown"), 0);
});
