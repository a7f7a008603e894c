import { type Clock, systemClock } from "../../src/core/clock.ts";

/** A clock 5 s into a UTC minute when the test starts, so a key's minute window does not end mid-test. */
export function minuteClock(): Clock {
  const now = Date.now();
  const offset = Math.ceil(now / 60_000) * 60_000 + 5_000 - now;
  return { now: () => Date.now() + offset, sleep: systemClock.sleep };
}
