/**
 * The per-key counters, leases and tallies (`charge`, `release`, `addToTally`, `readTally`) behave alike on the
 * memory store, Redis, the Redis-with-fallback store and a 3-master Redis Cluster (many scopes: their scripts are
 * routed by their keys' slot); and two clients on one Redis share them.
 */

import assert from "node:assert/strict";
import { FallbackStore } from "../../src/store/fallback.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { RedisStore } from "../../src/store/redis.ts";
import type { Store } from "../../src/store/store.ts";
import { hasRedis, type RedisServer, startRedis } from "../_support/redis.ts";
import { hasRedisCli, startCluster } from "../_support/redis_cluster.ts";
import { test } from "../_support/test.ts";

const T = 1_900_000_000_000;

async function contract(t: Deno.TestContext, open: (ns: string) => Promise<Store>): Promise<void> {
  const step = (name: string, body: (store: Store) => Promise<void>) =>
    t.step(name, async () => {
      const store = await open(`counters-${crypto.randomUUID().slice(0, 8)}`);
      try {
        await body(store);
      } finally {
        await store.close();
      }
    });

  await step("a rate limit admits up to its limit, then refuses without charging", async (store) => {
    const rpm = (amount = 1) => [{ name: "rpm:1", amount, limit: 3, ttlMs: 60_000 }];
    for (let i = 1; i <= 3; i++) {
      assert.deepEqual(await store.charge("k", rpm()), {
        admitted: true,
        refused: -1,
        totals: [i],
        leases: 0,
      });
    }
    assert.deepEqual(await store.charge("k", rpm()), { admitted: false, refused: 0, totals: [3], leases: 0 });
    assert.deepEqual(await store.charge("other", rpm()), {
      admitted: true,
      refused: -1,
      totals: [1],
      leases: 0,
    });
    // A correction (negative, no limit) always applies.
    assert.deepEqual((await store.charge("k", [{ name: "rpm:1", amount: -2, ttlMs: 60_000 }])).totals, [1]);
  });

  await step(
    "a budget checked with amount 0 refuses once spent; an oversized first charge passes",
    async (store) => {
      const day = (amount: number) => [{ name: "tpd:5", amount, limit: 100, ttlMs: 60_000 }];
      assert.equal((await store.charge("k", day(0))).admitted, true);
      assert.deepEqual((await store.charge("k", day(250))).totals, [250]);
      assert.deepEqual(await store.charge("k", day(0)), {
        admitted: false,
        refused: 0,
        totals: [250],
        leases: 0,
      });
      assert.equal((await store.charge("k", day(1))).admitted, false);
      // Spent exactly: refused too.
      await store.charge("exact", day(100));
      assert.equal((await store.charge("exact", day(0))).refused, 0);
    },
  );

  await step("all or nothing over counters of different lifetimes", async (store) => {
    const counters = (tokens: number) => [
      { name: "rpm:1", amount: 1, limit: 10, ttlMs: 60_000 },
      { name: "tpm:1", amount: tokens, limit: 100, ttlMs: 60_000 },
      { name: "month:7", amount: 0, limit: 1000, ttlMs: 40 * 86_400_000 },
    ];
    assert.deepEqual((await store.charge("k", counters(60))).totals, [1, 60, 0]);
    assert.deepEqual(await store.charge("k", counters(60)), {
      admitted: false,
      refused: 1,
      totals: [1, 60, 0],
      leases: 0,
    });
    assert.deepEqual((await store.charge("k", counters(40))).totals, [2, 100, 0]);
  });

  await step("leases: at most `limit` holders; released and lapsed places come back", async (store) => {
    const lease = (token: string, now = T) => ({ name: "par", token, limit: 2, now, until: now + 60_000 });
    const rpm = [{ name: "rpm:1", amount: 1, ttlMs: 60_000 }];
    assert.deepEqual(await store.charge("k", rpm, lease("a")), {
      admitted: true,
      refused: -1,
      totals: [1],
      leases: 1,
    });
    assert.equal((await store.charge("k", rpm, lease("b"))).leases, 2);
    // Refused by the lease: the counter is not charged either.
    assert.deepEqual(await store.charge("k", rpm, lease("c")), {
      admitted: false,
      refused: 1,
      totals: [2],
      leases: 2,
    });
    await store.release("k", "par", "a");
    assert.equal((await store.charge("k", [], lease("c"))).admitted, true);
    // Both remaining holders lapse by their `until`: a crashed instance's places come back.
    assert.deepEqual(await store.charge("k", [], lease("d", T + 61_000)), {
      admitted: true,
      refused: -1,
      totals: [],
      leases: 1,
    });
  });

  await step(
    "a release with counters gives the place back and adds them, no limit checked",
    async (store) => {
      const lease = (token: string) => ({ name: "par", token, limit: 1, now: T, until: T + 60_000 });
      const tpm = (amount: number) => ({ name: "tpm:1", amount, limit: 100, ttlMs: 60_000 });
      assert.deepEqual((await store.charge("k", [tpm(80)], lease("a"))).totals, [80]);
      assert.equal((await store.charge("k", [tpm(0)], lease("b"))).refused, 1, "the one place is taken");
      // The request used 150 tokens, not the 80 it was charged: past the limit, the correction still applies.
      await store.release("k", "par", "a", [
        { name: "tpm:1", amount: 70, ttlMs: 60_000 },
        { name: "day:1", amount: 150, ttlMs: 86_400_000 },
        { name: "nothing:1", amount: 0, ttlMs: 60_000 },
      ]);
      const reply = await store.charge(
        "k",
        [tpm(0), { name: "day:1", amount: 0, ttlMs: 60_000 }, {
          name: "nothing:1",
          amount: 0,
          ttlMs: 60_000,
        }],
        lease("b"),
      );
      assert.deepEqual(reply, { admitted: false, refused: 0, totals: [150, 150, 0], leases: 0 });
      assert.deepEqual(await store.charge("k", [], lease("b")), {
        admitted: true,
        refused: -1,
        totals: [],
        leases: 1,
      });
      // Without counters: the place alone.
      await store.release("k", "par", "b", []);
      assert.equal((await store.charge("k", [], lease("c"))).leases, 1);
    },
  );

  await step("many scopes at once (spread over a cluster's slots)", async (store) => {
    const replies = await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) => store.charge(`key:${i}`, [{ name: "rpm:1", amount: 1, limit: 1, ttlMs: 60_000 }]),
      ),
    );
    assert.ok(replies.every((reply) => reply.admitted));
    const again = await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) => store.charge(`key:${i}`, [{ name: "rpm:1", amount: 1, limit: 1, ttlMs: 60_000 }]),
      ),
    );
    assert.ok(again.every((reply) => !reply.admitted));
  });

  await step("tallies add integer fields and read back whole", async (store) => {
    assert.deepEqual(await store.readTally("usage:2026-12-06"), {});
    await store.addToTally("usage:2026-12-06", { "a\trequests": 1, "a\tusd": 12.6 }, 60_000);
    await store.addToTally("usage:2026-12-06", { "a\trequests": 1, "b\trequests": 3, "b\tzero": 0 }, 60_000);
    assert.deepEqual(await store.readTally("usage:2026-12-06"), {
      "a\trequests": 2,
      "a\tusd": 13,
      "b\trequests": 3,
    });
  });
}

test("counters contract: memory store", async (t) => {
  let now = T;
  await contract(t, () => Promise.resolve(new MemoryStore({ now: () => now++ })));
});

function onRedis(server: () => RedisServer, fallback: boolean) {
  return async (namespace: string): Promise<Store> => {
    const redis = await RedisStore.connect({ url: server().url, namespace });
    // The contract, not the wait bound (as in store_contract_test): at 250 ms a loaded machine sends a call to
    // local state, and a tally write made meanwhile stays there, so the shared tally read back lacks it.
    return fallback ? new FallbackStore({ primary: redis, waitMs: 5000 }) : redis;
  };
}

test({
  name: "counters contract: Redis, Redis with fallback, a 3-master Redis Cluster; shared by two clients",
  ignore: !hasRedis || !hasRedisCli,
  timeout: 30_000,
  async fn(t) {
    await using redis = await startRedis();
    await using cluster = await startCluster();
    await t.step("redis", (t) => contract(t, onRedis(() => redis, false)));
    await t.step("fallback", (t) => contract(t, onRedis(() => redis, true)));
    await t.step(
      "cluster",
      (t) =>
        contract(
          t,
          (namespace) => RedisStore.connect({ clusterNodes: cluster.seeds, namespace }),
        ),
    );
    await t.step("two clients share one limit and one lease set", async () => {
      const [a, b] = await Promise.all(
        [1, 2].map(() => RedisStore.connect({ url: redis.url, namespace: "two" })),
      );
      try {
        const rpm = [{ name: "rpm:1", amount: 1, limit: 3, ttlMs: 60_000 }];
        const results = await Promise.all([a, b, a, b, a].map((store) => store.charge("k", rpm)));
        assert.equal(results.filter((reply) => reply.admitted).length, 3);
        const lease = (token: string) => ({ name: "par", token, limit: 1, now: T, until: T + 60_000 });
        assert.equal((await a.charge("k", [], lease("x"))).admitted, true);
        assert.equal((await b.charge("k", [], lease("y"))).admitted, false);
        await a.release("k", "par", "x");
        assert.equal((await b.charge("k", [], lease("y"))).admitted, true);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  },
});
