import assert from "node:assert/strict";
import { Flight, lockKey, lockOrWait, type Shared } from "../../src/cache/coalesce.ts";
import { PENDING, PENDING_MS, relayPointer } from "../../src/cache/relay.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { test } from "../_support/test.ts";

const options = (token: string, waitMs = 30_000) => ({ ttlMs: 30_000, waitMs, token });

test("lockOrWait: a leftover lock with this instance's own token is used at once, not waited out", async () => {
  const store = new MemoryStore();
  // As after a lock script whose reply timed out: the lock is there, with our token.
  assert.equal(await store.setIfAbsent(lockKey("k"), "me", 30_000), true);
  const started = performance.now();
  const outcome = await lockOrWait(store, "k", options("me"), new AbortController().signal);
  assert.deepEqual(outcome, { kind: "lead", locked: true, waited: true });
  assert.ok(performance.now() - started < 1000, `took ${Math.round(performance.now() - started)} ms`);
});

test("lockOrWait: another holder's lock is waited for, up to the bound, and then led without it", async () => {
  const store = new MemoryStore();
  assert.equal(await store.setIfAbsent(lockKey("k"), "other instance", 30_000), true);
  const started = performance.now();
  const outcome = await lockOrWait(store, "k", options("me", 150), new AbortController().signal);
  assert.deepEqual(outcome, { kind: "lead", locked: false, waited: true });
  assert.ok(performance.now() - started >= 140);
  assert.equal(await store.get(lockKey("k")), "other instance");
});

test(
  "lockOrWait, a stream: a holder that never answers the ask (it died before) is waited for 3 s, not its lock's 30 s",
  {
    timeout: 15_000,
  },
  async () => {
    const store = new MemoryStore();
    assert.equal(await store.setIfAbsent(lockKey("k"), "dead instance", 30_000), true);
    const started = performance.now();
    const outcome = await lockOrWait(
      store,
      "k",
      { ...options("me", 10_000), relay: true },
      new AbortController().signal,
    );
    const ms = performance.now() - started;
    assert.deepEqual(outcome, { kind: "lead", locked: false, waited: true });
    assert.ok(ms >= 2900 && ms < 6000, `took ${Math.round(ms)} ms`);
  },
);

test(
  "lockOrWait, a stream: a holder that keeps saying 'pending' is waited for",
  { timeout: 15_000 },
  async () => {
    const store = new MemoryStore();
    assert.equal(await store.setIfAbsent(lockKey("k"), "live instance", 30_000), true);
    const say = () => store.set(relayPointer("k"), PENDING, PENDING_MS);
    await say();
    const saying = setInterval(say, PENDING_MS / 3);
    try {
      const started = performance.now();
      const outcome = await lockOrWait(
        store,
        "k",
        { ...options("me", 4500), relay: true },
        new AbortController().signal,
      );
      assert.deepEqual(outcome, { kind: "lead", locked: false, waited: true });
      assert.ok(
        performance.now() - started >= 4400,
        `gave up after ${Math.round(performance.now() - started)} ms`,
      );
    } finally {
      clearInterval(saying);
    }
  },
);

test(
  "Flight: followers get the answer whether they wait before or after it settles; the upstream call is aborted only when all left",
  {
    timeout: 5_000,
  },
  async () => {
    const flight = new Flight();
    const leader = new AbortController();
    const early = new AbortController();
    const stopLeader = flight.attend(leader.signal);
    const waiting = flight.follow(early.signal);
    const shared = { kind: "entry", answer: { body: "{}" } } as unknown as Shared;
    leader.abort();
    assert.equal(flight.signal.aborted, false, "a follower still attends");
    flight.settle(shared);
    flight.settle(null);
    assert.equal(await waiting, shared);
    // Joined after the settle (before the flight closed): the same answer, at once.
    assert.equal(await flight.follow(new AbortController().signal), shared);
    stopLeader();

    // Settled before anyone followed (a flight's answer came before any identical request did): the same.
    const unfollowed = new Flight();
    unfollowed.settle(shared);
    assert.equal(await unfollowed.follow(new AbortController().signal), shared);

    const alone = new Flight();
    const client = new AbortController();
    alone.attend(client.signal);
    client.abort();
    assert.equal(alone.signal.aborted, true, "its only client left before it settled");
    const gone = new AbortController();
    const following = new Flight().follow(gone.signal);
    gone.abort();
    assert.equal(await following, "gone");
  },
);
