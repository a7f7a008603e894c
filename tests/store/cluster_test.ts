/**
 * The store on a real 3-master Redis Cluster (started once for this file): the whole store contract with
 * auto-pipelining on, for the Redis store and the fallback wrapper over it.
 */

import assert from "node:assert/strict";
import calculateSlot from "cluster-key-slot";
import { FallbackStore } from "../../src/store/fallback.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { hasRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";
import { hasRedisCli, startCluster } from "../_support/redis_cluster.ts";
import { sleep, storeContract } from "./contract.ts";

test({
  name: "the store on a 3-master Redis Cluster",
  ignore: !hasRedis || !hasRedisCli,
  timeout: 30_000,
  async fn(t) {
    await using cluster = await startCluster();
    const open = (namespace: string) => RedisStore.connect({ clusterNodes: cluster.seeds, namespace });

    await t.step("RedisStore meets the store contract", async (t) => {
      await storeContract(t, { kind: "redis", shared: true, open, advance: sleep, now: Date.now });
    });

    // The contract, not the wait bound: a long bound, so a saturated machine does not send calls to local state.
    await t.step("FallbackStore over the cluster meets the store contract", async (t) => {
      await storeContract(t, {
        kind: "redis",
        shared: true,
        open: async (namespace) => new FallbackStore({ primary: await open(namespace), waitMs: 5000 }),
        advance: sleep,
        now: Date.now,
      });
    });

    await t.step("keys spread over the three masters, and nodeOf names each key's master", async () => {
      const store = await open("spread");
      try {
        const ids = Array.from({ length: 30 }, (_, i) => `e${i}`);
        await Promise.all(ids.map((id) => store.addToWindows(id, [{ name: "rpm", amount: 1 }], 60_000, 0)));
        const owners = new Set<string>();
        for (const id of ids) {
          const node = store.nodeOf({ window: id });
          const master = await cluster.masterOf(calculateSlot(id));
          assert.equal(node, `127.0.0.1:${master?.port}`);
          owners.add(node);
        }
        assert.equal(owners.size, 3, "the counters live on all three masters");
        assert.deepEqual(store.nodesDown(), []);
      } finally {
        await store.close();
      }
    });

    // Owed deletes on two nodes, one of them hung: a retry of it takes its only owed delete as the probe, and a
    // patient read of it, not held back by the retry period, finds none left there (the other node's keep the
    // count above 0). It sends none first; it failed on the empty list once (TypeError).
    await t.step(
      "a patient read finds its hung node's owed deletes taken by a retry's probe: it still reads",
      async () => {
        const primary = await open("owed");
        const store = new FallbackStore({ primary });
        const nodeOf = (key: string) => primary.nodeOf!({ key });
        const server = (node: string) => cluster.nodes.find((server) => `127.0.0.1:${server.port}` === node)!;
        const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
        const a = nodeOf("k0");
        const onA = keys.filter((key) => nodeOf(key) === a);
        const onB = keys.find((key) => nodeOf(key) !== a)!;
        const [lockA, readA, valueA] = onA;
        try {
          await store.set(valueA, "kept");
          await server(nodeOf(onB)).signal("SIGSTOP");
          await store.deleteIfEquals(onB, "token").finally(() => server(nodeOf(onB)).signal("SIGCONT"));
          await server(a).signal("SIGSTOP");
          let reads: Promise<string | null>[];
          try {
            await store.deleteIfEquals(lockA, "token");
            assert.ok(store.nodesDown().includes(a));
            await sleep(1100); // past the retry period: the next call to A is its retry
            reads = [store.get(readA), store.getPatiently(valueA, 3000)];
            await sleep(300);
          } finally {
            await server(a).signal("SIGCONT");
          }
          assert.equal((await Promise.all(reads))[1], "kept");
        } finally {
          await store.close();
        }
        await cluster.waitOk();
      },
    );
  },
});
