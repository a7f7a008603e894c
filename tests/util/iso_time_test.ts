import assert from "node:assert/strict";
import { isoDay, isoTime } from "../../src/util/iso_time.ts";
import { test } from "../_support/test.ts";

test("isoTime writes what toISOString writes: edges of days, months, leap years and milliseconds", () => {
  const times = [
    0,
    1,
    999,
    Date.UTC(2024, 1, 29, 23, 59, 59, 999),
    Date.UTC(2026, 11, 31, 23, 59, 59, 990),
    Date.UTC(2027, 0, 1, 0, 0, 0, 9),
    Date.UTC(1000, 0, 1),
    Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    Date.UTC(999, 11, 31, 23, 59, 59, 999), // three-digit year: V8's own
    Date.UTC(10000, 0, 1), // five digits: V8's own
    -1,
    Date.UTC(-1, 0, 1),
  ];
  let seed = 7;
  for (let i = 0; i < 2000; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    times.push(Math.floor((seed / 2147483648) * 4_102_444_800_000)); // 1970 to 2100
  }
  for (const ms of times) {
    assert.equal(isoTime(ms), new Date(ms).toISOString(), `at ${ms}`);
    assert.equal(isoDay(ms), new Date(ms).toISOString().slice(0, 10));
  }
  assert.throws(() => isoTime(NaN), RangeError, "no date: as toISOString");
});
