import assert from "node:assert/strict";
import {
  type AccessToken,
  CachedToken,
  FAILURE_BACKOFF_MS,
  refreshAt,
} from "../../src/entra/cached_token.ts";
import { test } from "../_support/test.ts";

const MIN = 60_000;

function source(lifetimeMs: number) {
  let now = 1_000_000;
  let fetches = 0;
  let fail: Error | undefined;
  let gate: Promise<void> = Promise.resolve();
  const fetch = async (): Promise<AccessToken> => {
    fetches++;
    await gate;
    if (fail) throw fail;
    return { value: `tok-${fetches}`, obtainedAt: now, expiresAt: now + lifetimeMs };
  };
  return {
    token: new CachedToken(fetch, () => now),
    advance: (ms: number) => void (now += ms),
    fetches: () => fetches,
    failWith: (error: Error | undefined) => void (fail = error),
    hold: () => {
      let open!: () => void;
      gate = new Promise((resolve) => (open = resolve));
      return () => open();
    },
  };
}

test("refresh is due when a tenth of the lifetime is left, at most five minutes", () => {
  const at = (lifetime: number) => refreshAt({ value: "", obtainedAt: 0, expiresAt: lifetime });
  assert.equal(at(60 * MIN), 55 * MIN); // a tenth would be 6 min: capped at 5
  assert.equal(at(10 * MIN), 9 * MIN); // a tenth: 1 min
});

test("one fetch however many wait; cached until due; refreshed in the background while still valid", async () => {
  const s = source(60 * MIN);
  const open = s.hold();
  const waiting = Array.from({ length: 50 }, () => s.token.get());
  open();
  assert.deepEqual(new Set(await Promise.all(waiting)), new Set(["tok-1"]));
  assert.equal(s.fetches(), 1);

  s.advance(54 * MIN);
  assert.equal(await s.token.get(), "tok-1");
  assert.equal(s.fetches(), 1);

  // Due: the caller still gets the valid token at once; one refresh runs for everyone.
  s.advance(2 * MIN);
  const closeRefresh = s.hold();
  assert.equal(await s.token.get(), "tok-1");
  assert.equal(await s.token.get(), "tok-1");
  assert.equal(s.fetches(), 2);
  closeRefresh();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(await s.token.get(), "tok-2");
});

test("an expired token is never served; a failure is answered from memory for the back-off, then retried", async () => {
  const s = source(10 * MIN);
  assert.equal(await s.token.get(), "tok-1");
  s.advance(10 * MIN);
  s.failWith(new Error("HTTP 401 invalid_client"));
  await assert.rejects(s.token.get(), /HTTP 401 invalid_client/);
  await assert.rejects(s.token.get(), /HTTP 401 invalid_client/);
  assert.equal(s.fetches(), 2, "the second caller did not ask again during the back-off");
  s.failWith(undefined);
  s.advance(FAILURE_BACKOFF_MS);
  assert.equal(await s.token.get(), "tok-3");
});
