/**
 * The store contract: one set of cases every Store must meet (memory, Redis, Redis Cluster, the fallback wrapper).
 * `storeContract(t, backend)` runs them as steps of one test.
 */

import assert from "node:assert/strict";
import { type EndpointHealth, HEALTHY, type Store } from "../../src/store/store.ts";

export interface Backend {
  /** A store in `namespace`; two stores opened with one namespace share state when `shared`. */
  open(namespace: string): Promise<Store>;
  /** Lets `ms` of store time pass: the memory store's clock jumps, Redis really waits. */
  advance(ms: number): Promise<void>;
  /** The clock the stores answer on (epoch ms): the memory store's own, else this process's. */
  now(): number;
  readonly shared: boolean;
  readonly kind: Store["kind"];
}

type Open = (namespaceSuffix?: string) => Promise<Store>;

export const T = 1_900_000_000_000;
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function storeContract(t: Deno.TestContext, backend: Backend): Promise<void> {
  let counter = 0;
  const step = (name: string, body: (open: Open) => Promise<void>) =>
    t.step(name, async () => {
      const base = `contract${++counter}-${crypto.randomUUID().slice(0, 8)}`;
      const opened: Store[] = [];
      const open: Open = async (suffix = "") => {
        const store = await backend.open(base + suffix);
        opened.push(store);
        return store;
      };
      try {
        await body(open);
      } finally {
        await Promise.all(opened.map((store) => store.close()));
      }
    });

  await step("kind and status", async (open) => {
    const store = await open();
    assert.equal(store.kind, backend.kind);
    assert.equal(store.status(), "ok");
  });

  await step("unknown ids are healthy", async (open) => {
    const store = await open();
    assert.deepEqual(await store.readHealth([]), []);
    assert.deepEqual(await store.readHealth(["a", "b"]), [HEALTHY, HEALTHY]);
    await store.recordSuccess("a");
    assert.deepEqual(await store.readHealth(["a"]), [HEALTHY]);
  });

  // Cooldowns are given as durations and measured by the store's clock; the answers carry deadlines on this
  // process's clock. `cooling(state)` reads one back as the time left (0: never cooled), to within `slack` ms
  // (Redis's clock runs while the test does; the memory store's does not).
  const slack = backend.kind === "memory" ? 0 : 1000;
  const left = (state: EndpointHealth) => state.cooldownUntil === 0 ? 0 : state.cooldownUntil - backend.now();
  const same = (
    state: EndpointHealth,
    [failures, ms, reason]: [number, number, EndpointHealth["reason"]],
    what = "",
  ) => {
    assert.deepEqual([state.failures, state.reason], [failures, reason], what);
    const got = left(state);
    assert.ok(
      ms === 0 ? got === 0 : Math.abs(got - ms) <= slack,
      `${what} cooldown: ${ms} ms left expected, got ${got}`,
    );
  };

  await step("failures accumulate and a success resets them", async (open) => {
    const store = await open();
    const options = { allowedFails: 3, cooldownMs: 5000 };
    assert.deepEqual(await store.recordFailure("e1", options), health(1, 0, null));
    assert.deepEqual(await store.recordFailure("e1", options), health(2, 0, null));
    assert.deepEqual(await store.readHealth(["e0", "e1"]), [HEALTHY, health(2, 0, null)]);
    await store.recordSuccess("e1");
    assert.deepEqual(await store.readHealth(["e1"]), [health(0, 0, null)]);
    assert.deepEqual(await store.recordFailure("e1", options), health(1, 0, null));
  });

  await step("reaching allowedFails cools down and starts the count again", async (open) => {
    const store = await open();
    const options = { allowedFails: 2, cooldownMs: 50_000 };
    await store.recordFailure("e1", options);
    same(await store.recordFailure("e1", options), [0, 50_000, "failures"]);
    same((await store.readHealth(["e1"]))[0], [0, 50_000, "failures"]);
    same(await store.recordFailure("e1", options), [1, 50_000, "failures"]);
    // allowedFails 1: every failure cools down at once.
    same(await store.recordFailure("e2", { allowedFails: 1, cooldownMs: 10_000 }), [0, 10_000, "failures"]);
  });

  await step("a cooldown is extended by a later deadline and never shortened", async (open) => {
    const store = await open();
    same(await store.coolDown("e1", 10_000, "rate_limit"), [0, 10_000, "rate_limit"]);
    same(await store.coolDown("e1", 5000, "failures"), [0, 10_000, "rate_limit"]);
    // A failure cooldown that ends earlier leaves the longer deadline (and its reason) in place.
    same(await store.recordFailure("e1", { allowedFails: 1, cooldownMs: 2000 }), [0, 10_000, "rate_limit"]);
    same(await store.coolDown("e1", 20_000, "failures"), [0, 20_000, "failures"]);
    same((await store.readHealth(["e1"]))[0], [0, 20_000, "failures"]);
  });

  await step("a rate-limit cooldown starts at once and resets the failure count", async (open) => {
    const store = await open();
    const options = { allowedFails: 5, cooldownMs: 5000 };
    await store.recordFailure("e1", options);
    await store.recordFailure("e1", options);
    same(await store.coolDown("e1", 3000, "rate_limit"), [0, 3000, "rate_limit"]);
    same(await store.coolDown("fresh", 3000, "rate_limit"), [0, 3000, "rate_limit"]);
  });

  await step("a success leaves a running cooldown alone", async (open) => {
    const store = await open();
    await store.coolDown("e1", 3000, "rate_limit");
    await store.recordFailure("e1", { allowedFails: 3, cooldownMs: 5000 });
    await store.recordSuccess("e1");
    const [e1, e2] = await store.readHealth(["e1", "e2"]);
    same(e1, [0, 3000, "rate_limit"]);
    assert.deepEqual(e2, HEALTHY);
  });

  await step("a cooldown ends by the store's clock, and one over is replaced by a new one", async (open) => {
    const store = await open();
    await store.coolDown("e1", 100, "rate_limit");
    await backend.advance(150);
    const [over] = await store.readHealth(["e1"]);
    assert.ok(over.cooldownUntil > 0 && left(over) <= -25, `ended 50 ms ago, yet ${left(over)} ms left`);
    // A new, shorter cooldown replaces one that has ended: it ends later than it.
    same(await store.coolDown("e1", 2000, "rate_limit"), [0, 2000, "rate_limit"]);
  });

  await step("readHealthNow, where a store has it, holds the store's own writes at once", async (open) => {
    const store = await open();
    if (!store.readHealthNow) return;
    // A shared store's copy holds what it read or wrote.
    await store.readHealth(["e1", "e2"]);
    assert.deepEqual(store.readHealthNow(["e1", "e2"]), [HEALTHY, HEALTHY]);
    const cooled = await store.coolDown("e1", 10_000, "rate_limit");
    await store.recordFailure("e2", { allowedFails: 3, cooldownMs: 5000 });
    const [e1, e2] = store.readHealthNow(["e1", "e2"])!;
    // The cooldown written (a shared store's copy may have read it again on its own announcement since: the time
    // left is then counted anew, a ms apart).
    same(e1, [0, 10_000, "rate_limit"]);
    assert.equal(e1.storedUntil, cooled.storedUntil);
    same(e2, [1, 0, null]);
    await store.recordSuccess("e2");
    const [again, e1Again] = store.readHealthNow(["e2", "e1"])!;
    same(again, [0, 0, null]);
    same(e1Again, [0, 10_000, "rate_limit"]);
    assert.equal(e1Again.storedUntil, cooled.storedUntil);
  });

  await step("get and set, with and without expiry", async (open) => {
    const store = await open();
    assert.equal(await store.get("missing"), null);
    await store.set("plain", "v1");
    await store.set("zero", "v0", 0);
    // 400 ms: long enough to hold on a loaded machine over the calls before its first read.
    await store.set("short", "s", 400);
    await store.set("renewed", "r", 50);
    await store.set("renewed", "r2");
    assert.equal(await store.get("plain"), "v1");
    assert.equal(await store.get("short"), "s");
    await store.set("plain", "v2");
    await backend.advance(450);
    assert.equal(await store.get("short"), null);
    assert.equal(await store.get("plain"), "v2");
    assert.equal(await store.get("zero"), "v0");
    assert.equal(await store.get("renewed"), "r2");
    await store.set("short", "again", 400);
    assert.equal(await store.get("short"), "again");
  });

  await step("setIfAbsent is a lock", async (open) => {
    const store = await open();
    assert.equal(await store.setIfAbsent("lock", "me", 400), true);
    assert.equal(await store.setIfAbsent("lock", "you", 400), false);
    assert.equal(await store.get("lock"), "me");
    await backend.advance(450);
    assert.equal(await store.setIfAbsent("lock", "you", 5000), true);
    assert.equal(await store.get("lock"), "you");
    assert.equal(await store.delete("lock"), true);
    assert.equal(await store.setIfAbsent("lock", "third", 5000), true);
    await store.set("taken", "x");
    assert.equal(await store.setIfAbsent("taken", "y", 5000), false);
  });

  await step("readOrLock reads the value, and takes the lock only when the value is absent", async (open) => {
    const store = await open();
    assert.deepEqual(await store.readOrLock("cache:{k}", "coalesce:{k}", "me", 400), {
      value: null,
      locked: true,
    });
    assert.equal(await store.get("coalesce:{k}"), "me");
    assert.deepEqual(await store.readOrLock("cache:{k}", "coalesce:{k}", "you", 400), {
      value: null,
      locked: false,
    });
    assert.equal(await store.get("coalesce:{k}"), "me");
    // Long enough to hold on a loaded machine between two calls.
    await backend.advance(450);
    assert.deepEqual(await store.readOrLock("cache:{k}", "coalesce:{k}", "you", 5000), {
      value: null,
      locked: true,
    });
    await store.set("cache:{hit}", "answer");
    assert.deepEqual(await store.readOrLock("cache:{hit}", "coalesce:{hit}", "me", 5000), {
      value: "answer",
      locked: false,
    });
    assert.equal(await store.get("coalesce:{hit}"), null);
    await store.set("cache:{empty}", "");
    assert.deepEqual(await store.readOrLock("cache:{empty}", "coalesce:{empty}", "me", 5000), {
      value: "",
      locked: false,
    });
  });

  await step("setAndUnlock writes the value and releases the lock only for its owner", async (open) => {
    const store = await open();
    assert.equal(await store.setIfAbsent("coalesce:{w}", "me", 5000), true);
    // Values of 400 ms: long enough to hold on a loaded machine over the reads after each write.
    assert.equal(await store.setAndUnlock("cache:{w}", "answer", 400, "coalesce:{w}", "you"), false);
    assert.equal(await store.get("coalesce:{w}"), "me", "someone else's token leaves the lock");
    assert.equal(await store.get("cache:{w}"), "answer", "the value is written either way");
    assert.equal(await store.setAndUnlock("cache:{w}", "newer", 400, "coalesce:{w}", "me"), true);
    assert.equal(await store.get("coalesce:{w}"), null);
    assert.equal(await store.get("cache:{w}"), "newer");
    await backend.advance(450);
    assert.equal(await store.get("cache:{w}"), null, "the value has its ttl");
    assert.equal(await store.setAndUnlock("cache:{f}", "kept", 0, "coalesce:{f}", "me"), false);
    await backend.advance(150);
    assert.equal(await store.get("cache:{f}"), "kept", "ttl 0: no expiry");
  });

  await step("extendIfEquals keeps a lock alive only for its owner (stores that have it)", async (open) => {
    const store = await open();
    if (!store.extendIfEquals) return;
    assert.equal(await store.setIfAbsent("coalesce:{x}", "me", 400), true);
    assert.equal(await store.extendIfEquals("coalesce:{x}", "you", 5000), false);
    assert.equal(await store.extendIfEquals("coalesce:{x}", "me", 5000), true);
    await backend.advance(600);
    assert.equal(await store.get("coalesce:{x}"), "me", "extended past its first TTL");
    assert.equal(await store.extendIfEquals("coalesce:{absent}", "me", 5000), false);
  });

  await step("deleteIfEquals releases a lock only for its owner", async (open) => {
    const store = await open();
    assert.equal(await store.setIfAbsent("lock", "owner-a", 5000), true);
    assert.equal(await store.deleteIfEquals("lock", "owner-b"), false);
    assert.equal(await store.get("lock"), "owner-a");
    assert.equal(await store.deleteIfEquals("lock", "owner-a"), true);
    assert.equal(await store.get("lock"), null);
    assert.equal(await store.deleteIfEquals("lock", "owner-a"), false);
    await store.set("cache:entry", "v");
    assert.equal(await store.deleteIfEquals("cache:entry", "other"), false);
    assert.equal(await store.deleteIfEquals("cache:entry", "v"), true);
    assert.equal(await store.get("cache:entry"), null);
  });

  await step("delete says whether the key was there", async (open) => {
    const store = await open();
    await store.set("k", "v");
    await store.set("gone", "v", 50);
    assert.equal(await store.delete("k"), true);
    assert.equal(await store.delete("k"), false);
    assert.equal(await store.get("k"), null);
    assert.equal(await store.delete("never"), false);
    await backend.advance(120);
    assert.equal(await store.delete("gone"), false);
  });

  await step("deleteByPrefix removes only that prefix and counts it", async (open) => {
    const store = await open();
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 620; i++) writes.push(store.set(`cache:${i}`, "x"));
    writes.push(store.set("cachex", "keep"), store.set("other:1", "keep"), store.set("ca*he:1", "keep"));
    writes.push(store.set("we*rd:1", "go"), store.set("weXrd:1", "keep"));
    await Promise.all(writes);
    await store.recordFailure("cache:", { allowedFails: 5, cooldownMs: 1000 });
    await store.addToWindow("cache:budget", 3, 60_000, T);
    assert.equal(await store.deleteByPrefix("cache:"), 620);
    assert.equal(await store.deleteByPrefix("cache:"), 0);
    assert.equal(await store.get("cache:7"), null);
    assert.equal(await store.get("cachex"), "keep");
    assert.equal(await store.get("other:1"), "keep");
    assert.equal(await store.get("ca*he:1"), "keep");
    assert.equal(await store.deleteByPrefix("we*rd:"), 1);
    assert.equal(await store.get("weXrd:1"), "keep");
    // Health and windows are not plain keys, whatever the prefix.
    assert.equal(await store.deleteByPrefix(""), 4);
    assert.deepEqual(await store.readHealth(["cache:"]), [health(1, 0, null)]);
    assert.equal(await store.addToWindow("cache:budget", 0, 60_000, T), 3);
  });

  await step("addToWindow sums per fixed window", async (open) => {
    const store = await open();
    assert.equal(await store.addToWindow("rpm:e1", 5, 1000, T), 5);
    assert.equal(await store.addToWindow("rpm:e1", 3, 1000, T + 999), 8);
    assert.equal(await store.addToWindow("rpm:e1", 0, 1000, T + 500), 8);
    assert.equal(await store.addToWindow("rpm:e1", -2, 1000, T + 1), 6);
    assert.equal(await store.addToWindow("rpm:e1", 1, 1000, T + 1000), 1);
    assert.equal(await store.addToWindow("rpm:e2", -4, 1000, T), -4);
    assert.equal(await store.addToWindow("rpm:e1", 0, 60_000, T), 0);
    await assert.rejects(store.addToWindow("rpm:e1", 1, 0, T), RangeError);
  });

  await step("a window is forgotten once it is over", async (open) => {
    const store = await open();
    assert.equal(await store.addToWindow("w", 7, 60, T), 7);
    assert.deepEqual(await store.addToWindows("e1", [{ name: "rpm", amount: 4 }], 60, T), {
      added: true,
      totals: [4],
    });
    await backend.advance(150);
    assert.equal(await store.addToWindow("w", 1, 60, T), 1);
    assert.deepEqual(await store.addToWindows("e1", [{ name: "rpm", amount: 0 }], 60, T), {
      added: true,
      totals: [0],
    });
  });

  await step("addToWindows charges the counters of one scope all or nothing", async (open) => {
    const store = await open();
    const charge = (requests: number, tokens: number, now = T) =>
      store.addToWindows(
        "e1",
        [
          { name: "rpm", amount: requests, limit: 3 },
          { name: "tpm", amount: tokens, limit: 100 },
        ],
        60_000,
        now,
      );
    assert.deepEqual(await charge(1, 40), { added: true, totals: [1, 40] });
    assert.deepEqual(await charge(1, 50), { added: true, totals: [2, 90] });
    // Over one limit: neither counter moves.
    assert.deepEqual(await charge(1, 20), { added: false, totals: [2, 90] });
    assert.deepEqual(await charge(0, 0), { added: true, totals: [2, 90] });
    assert.deepEqual(await charge(1, 10), { added: true, totals: [3, 100] });
    assert.deepEqual(await charge(1, 0), { added: false, totals: [3, 100] });
    // Corrections are never refused.
    assert.deepEqual(await charge(-1, -30), { added: true, totals: [2, 70] });
    // The next window starts again from 0; other scopes and addToWindow keys are separate counters.
    assert.deepEqual(await charge(1, 5, T + 60_000), { added: true, totals: [1, 5] });
    assert.deepEqual(await store.addToWindows("e2", [{ name: "rpm", amount: 1 }], 60_000, T), {
      added: true,
      totals: [1],
    });
    assert.equal(await store.addToWindow("e1", 0, 60_000, T), 0);
    assert.deepEqual(await store.addToWindows("e1", [], 60_000, T), { added: true, totals: [] });
    await assert.rejects(store.addToWindows("e1", [{ name: "rpm", amount: 1 }], 0, T), RangeError);
  });

  await step("addToWindows lets one oversized request through an empty window, and rounds", async (open) => {
    const store = await open();
    const big = [{ name: "tpm", amount: 500, limit: 100 }];
    assert.deepEqual(await store.addToWindows("e1", big, 60_000, T), { added: true, totals: [500] });
    assert.deepEqual(await store.addToWindows("e1", big, 60_000, T), { added: false, totals: [500] });
    assert.deepEqual(await store.addToWindows("e2", [{ name: "tpm", amount: 2.6 }], 60_000, T), {
      added: true,
      totals: [3],
    });
  });

  await step(
    "addToWindows adds to several counters of one scope, all or nothing under their limits",
    async (open) => {
      const store = await open();
      const rpm = (amount: number, limit?: number) => ({ name: "rpm", amount, limit });
      const tpm = (amount: number, limit?: number) => ({ name: "tpm", amount, limit });
      assert.deepEqual(await store.addToWindows("e1", [rpm(1, 3), tpm(40, 100)], 1000, T), {
        added: true,
        totals: [1, 40],
      });
      assert.deepEqual(await store.addToWindows("e1", [rpm(1, 3), tpm(60, 100)], 1000, T + 10), {
        added: true,
        totals: [2, 100],
      });
      // The token limit refuses: the request counter is left alone too.
      assert.deepEqual(await store.addToWindows("e1", [rpm(1, 3), tpm(1, 100)], 1000, T + 20), {
        added: false,
        totals: [2, 100],
      });
      // A negative correction frees tokens; then a request fits again, up to the request limit.
      assert.deepEqual(await store.addToWindows("e1", [tpm(-30)], 1000, T + 30), {
        added: true,
        totals: [70],
      });
      assert.deepEqual(await store.addToWindows("e1", [rpm(1, 3), tpm(30, 100)], 1000, T + 40), {
        added: true,
        totals: [3, 100],
      });
      assert.deepEqual(await store.addToWindows("e1", [rpm(1, 3)], 1000, T + 50), {
        added: false,
        totals: [3],
      });
      // Amount 0 reads; no limit always adds.
      assert.deepEqual(await store.addToWindows("e1", [rpm(0, 3), tpm(0, 100)], 1000, T + 60), {
        added: true,
        totals: [3, 100],
      });
      assert.deepEqual(await store.addToWindows("e1", [rpm(2)], 1000, T + 70), { added: true, totals: [5] });
      // Another scope and the next window start at 0; an empty window lets one oversize request through.
      assert.deepEqual(await store.addToWindows("e2", [tpm(500, 100)], 1000, T), {
        added: true,
        totals: [500],
      });
      assert.deepEqual(await store.addToWindows("e2", [tpm(1, 100)], 1000, T), {
        added: false,
        totals: [500],
      });
      assert.deepEqual(await store.addToWindows("e1", [rpm(1, 3), tpm(0, 100)], 1000, T + 1000), {
        added: true,
        totals: [1, 0],
      });
      // Separate from addToWindow counters, and not plain keys.
      assert.equal(await store.addToWindow("e1", 0, 1000, T), 0);
      assert.equal(await store.deleteByPrefix(""), 0);
      assert.deepEqual(await store.addToWindows("e1", [rpm(0)], 1000, T), { added: true, totals: [5] });
      assert.deepEqual(await store.addToWindows("e1", [], 1000, T), { added: true, totals: [] });
      await assert.rejects(store.addToWindows("e1", [rpm(1)], 0, T), RangeError);
    },
  );

  await step("addToWindows forgets a window once it is over", async (open) => {
    const store = await open();
    assert.deepEqual(await store.addToWindows("e1", [{ name: "rpm", amount: 2 }], 60, T), {
      added: true,
      totals: [2],
    });
    await backend.advance(150);
    assert.deepEqual(await store.addToWindows("e1", [{ name: "rpm", amount: 0 }], 60, T), {
      added: true,
      totals: [0],
    });
  });

  await step("namespaces keep two stores apart", async (open) => {
    const a = await open("-a");
    const b = await open("-b");
    await a.set("k", "from a");
    await b.set("k", "from b");
    await a.coolDown("e1", 1000, "rate_limit");
    await a.addToWindow("w", 2, 1000, T);
    assert.equal(await a.get("k"), "from a");
    assert.equal(await b.get("k"), "from b");
    assert.deepEqual(await b.readHealth(["e1"]), [HEALTHY]);
    assert.equal(await b.addToWindow("w", 1, 1000, T), 1);
    assert.equal(await b.deleteByPrefix(""), 1);
    assert.equal(await a.get("k"), "from a");
  });

  await step("many keys, scripts and windows in one tick (one auto-pipeline per node)", async (open) => {
    const store = await open();
    const ids = Array.from({ length: 24 }, (_, i) => `endpoint-${i}`);
    const replies = await Promise.all(ids.map((id, i) =>
      Promise.all([
        store.addToWindows(id, [{ name: "rpm", amount: 1, limit: 5 }, { name: "tpm", amount: i }], 60_000, T),
        store.addToWindow(id, 2, 60_000, T),
        store.readOrLock(`cache:{${id}}`, `coalesce:{${id}}`, "me", 5000),
        store.set(`affinity:${id}`, id, 5000),
        store.recordFailure(id, { allowedFails: 5, cooldownMs: 1000 }),
        store.readHealth([id, `${id}-other`]),
        store.deleteIfEquals(`lock:${id}`, "nobody"),
      ])
    ));
    for (const [i, [windows, window, lookup]] of replies.entries()) {
      assert.deepEqual(windows, { added: true, totals: [1, i] });
      assert.equal(window, 2);
      assert.deepEqual(lookup, { value: null, locked: true });
    }
    const after = await Promise.all(ids.map((id) => store.get(`affinity:${id}`)));
    assert.deepEqual(after, ids);
    assert.deepEqual(await store.readHealth(ids.slice(0, 2)), [health(1, 0, null), health(1, 0, null)]);
  });

  if (!backend.shared) return;

  await step("two clients on one server share every kind of state", async (open) => {
    const a = await open();
    const b = await open();
    await a.set("affinity:resp_1", "e1", 5000);
    assert.equal(await b.get("affinity:resp_1"), "e1");
    assert.equal(await a.setIfAbsent("lock:x", "a", 5000), true);
    assert.equal(await b.setIfAbsent("lock:x", "b", 5000), false);
    assert.equal((await a.readOrLock("cache:{y}", "coalesce:{y}", "a", 5000)).locked, true);
    assert.equal((await b.readOrLock("cache:{y}", "coalesce:{y}", "b", 5000)).locked, false);
    await a.coolDown("e1", 5000, "rate_limit");
    same((await b.readHealth(["e1"]))[0], [0, 5000, "rate_limit"]);
    assert.equal(await b.deleteByPrefix("affinity:"), 1);
    assert.equal(await a.get("affinity:resp_1"), null);
  });

  await step(
    "relay streams (stores that have them): in order, bytes intact, read after an id, trimmed, TTL",
    async (open) => {
      const store = await open();
      if (!store.appendToRelay || !store.readRelay) return;
      const key = "relay:{r}:1";
      const bytes = new Uint8Array([0, 255, 10, 13, 0xe2, 0x82]); // not UTF-8: kept as bytes
      const first = await store.appendToRelay(key, { fields: { n: "0", m: "{}" } }, 5000);
      const second = await store.appendToRelay(key, { fields: { n: "1" }, data: bytes }, 5000);
      const all = await store.readRelay(key, "0", 10);
      assert.deepEqual(all.map((entry) => entry.id), [first, second]);
      assert.deepEqual(all[0].fields, { n: "0", m: "{}" });
      assert.deepEqual(all[1].data, bytes);
      assert.deepEqual(await store.readRelay(key, second, 10), []);
      assert.equal((await store.readRelay(key, "0", 1)).length, 1, "count bounds a read");
      await store.appendToRelay(key, { fields: { n: "2" }, trimBefore: second }, 5000);
      assert.deepEqual((await store.readRelay(key, "0", 10)).map((entry) => entry.fields.n), ["1", "2"]);
      assert.deepEqual(await store.readRelay("relay:{r}:absent", "0", 10), []);
      await store.appendToRelay("relay:{r}:short", { fields: { h: "1" } }, 80);
      await backend.advance(150);
      assert.deepEqual(await store.readRelay("relay:{r}:short", "0", 10), [], "every append sets the TTL");
    },
  );

  await step("failures and windows are atomic across clients", async (open) => {
    const a = await open();
    const b = await open();
    const options = { allowedFails: 10, cooldownMs: 5000 };
    const failures = [];
    const adds = [];
    for (let i = 0; i < 25; i++) {
      failures.push(a.recordFailure("e1", options), b.recordFailure("e1", options));
      adds.push(a.addToWindow("tpm", 3, 60_000, T), b.addToWindow("tpm", 3, 60_000, T));
    }
    const results = await Promise.all(failures);
    // 50 failures with allowedFails 10: exactly five of them started (or kept) the cooldown.
    assert.equal(results.filter((h) => h.failures === 0).length, 5);
    same((await a.readHealth(["e1"]))[0], [0, 5000, "failures"]);
    const totals = (await Promise.all(adds)).sort((x, y) => x - y);
    assert.deepEqual(totals, Array.from({ length: 50 }, (_, i) => 3 * (i + 1)));
  });

  await step("addToWindows never overspends a budget shared by two clients", async (open) => {
    const a = await open();
    const b = await open();
    await a.addToWindows("e1", [{ name: "rpm", amount: 1 }], 60_000, T);
    const calls = [];
    for (let i = 0; i < 20; i++) {
      for (const store of [a, b]) {
        calls.push(store.addToWindows("e1", [{ name: "rpm", amount: 1, limit: 10 }], 60_000, T));
      }
    }
    const replies = await Promise.all(calls);
    assert.equal(replies.filter((reply) => reply.added).length, 9);
    assert.deepEqual(await b.addToWindows("e1", [{ name: "rpm", amount: 0 }], 60_000, T), {
      added: true,
      totals: [10],
    });
  });

  await step("addToWindows limits hold across clients", async (open) => {
    const a = await open();
    const b = await open();
    const reserve = (store: Store) =>
      store.addToWindows(
        "e1",
        [{ name: "rpm", amount: 1, limit: 30 }, { name: "tpm", amount: 10 }],
        60_000,
        T,
      );
    const replies = await Promise.all(Array.from({ length: 25 }, () => [reserve(a), reserve(b)]).flat());
    assert.equal(replies.filter((reply) => reply.added).length, 30);
    assert.deepEqual(
      await b.addToWindows("e1", [{ name: "rpm", amount: 0 }, { name: "tpm", amount: 0 }], 60_000, T),
      { added: true, totals: [30, 300] },
    );
  });
}

export function health(
  failures: number,
  cooldownUntil: number,
  reason: EndpointHealth["reason"],
): EndpointHealth {
  return { failures, cooldownUntil, reason };
}
