/**
 * One contract for every Store: the memory store, the Redis store and the fallback store over Redis run the same
 * cases. Then what only Redis has: several clients on one server, namespaces, and outages.
 */

import assert from "node:assert/strict";
import { FallbackStore } from "../../src/store/fallback.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { RedisStore, type StoreLogger } from "../../src/store/redis.ts";
import { HEALTHY } from "../../src/store/store.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { slowLink } from "../_support/slow_link.ts";
import { sleep, storeContract, T } from "./contract.ts";
import { test } from "../_support/test.ts";

test("MemoryStore meets the store contract", async (t) => {
  let clock = T;
  await storeContract(t, {
    kind: "memory",
    shared: false,
    open: (namespace) => Promise.resolve(new MemoryStore({ namespace, now: () => clock })),
    advance: (ms) => {
      clock += ms;
      return Promise.resolve();
    },
    now: () => clock,
  });
});

test("MemoryStore sweeps expired entries as it is written to", async () => {
  let clock = T;
  const store = new MemoryStore({ now: () => clock });
  for (let i = 0; i < 1000; i++) await store.set(`cache:${i}`, "x", 10);
  for (let i = 0; i < 100; i++) await store.addToWindow(`w${i}`, 1, 10, T);
  assert.equal(store.size, 1100);
  clock += 20;
  for (let i = 0; i < 200; i++) {
    await store.set(`live:${i}`, "y");
    await store.addToWindow("w", 1, 60_000, T);
  }
  assert.equal(store.size, 201);
});

test({
  name: "RedisStore meets the store contract",
  ignore: !hasRedis,
  async fn(t) {
    await using redis = await startRedis();
    await storeContract(t, {
      kind: "redis",
      shared: true,
      open: (namespace) => RedisStore.connect({ url: redis.url, namespace }),
      advance: sleep,
      now: Date.now,
    });
  },
});

test({
  name: "FallbackStore over Redis meets the store contract",
  ignore: !hasRedis,
  async fn(t) {
    await using redis = await startRedis();
    await storeContract(t, {
      kind: "redis",
      shared: true,
      open: async (namespace) =>
        new FallbackStore({ primary: await RedisStore.connect({ url: redis.url, namespace }), waitMs: 5000 }),
      advance: sleep,
      now: Date.now,
    });
  },
});

/** Awaits `call` and asserts it took well under a second (or under `limitMs`). */
async function fast<T>(call: Promise<T>, limitMs = 300): Promise<T> {
  const started = performance.now();
  const result = await call;
  const took = performance.now() - started;
  assert.ok(took < limitMs, `store call took ${took.toFixed(0)} ms while Redis was away`);
  return result;
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function recordingLogger(): { logger: StoreLogger; lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    logger: (level, message, fields) => {
      assert.ok(
        !JSON.stringify(fields ?? {}).includes("s3cret"),
        `a log line carries the password: ${message}`,
      );
      lines.push(`${level}: ${message}`);
    },
  };
}

test({
  name: "FallbackStore keeps serving from local state while Redis is down, then returns to Redis",
  ignore: !hasRedis,
  async fn() {
    await using redis = await startRedis({ password: "s3cret-pw" });
    const redisLog = recordingLogger();
    const fallbackLog = recordingLogger();
    const store = new FallbackStore({
      primary: await RedisStore.connect({ url: redis.url, logger: redisLog.logger }),
      logger: fallbackLog.logger,
    });
    const observer = await RedisStore.connect({ url: redis.url });
    try {
      await store.set("shared", "in redis");
      assert.equal(await observer.get("shared"), "in redis");

      await redis.stop();
      await until(() => store.status() === "degraded", 2000, "status degraded");
      assert.equal(await fast(store.get("shared")), null);
      await fast(store.set("local", "only here", 5000));
      assert.equal(await fast(store.get("local")), "only here");
      const cooled = await fast(store.recordFailure("e1", { allowedFails: 1, cooldownMs: 60_000 }));
      assert.equal(cooled.reason, "failures");
      assert.deepEqual(await fast(store.readHealth(["e1", "e2"])), [cooled, HEALTHY]);
      assert.equal(await fast(store.addToWindow("w", 2, 1000, T)), 2);
      assert.equal(await fast(store.setIfAbsent("lock", "me", 5000)), true);
      // A cache lookup while Redis is away reads and locks locally, at once.
      assert.deepEqual(await fast(store.readOrLock("cache:{q}", "coalesce:{q}", "me", 5000)), {
        value: null,
        locked: true,
      });
      assert.deepEqual(await fast(store.readOrLock("local", "coalesce:{local}", "me", 5000)), {
        value: "only here",
        locked: false,
      });
      assert.equal(store.status(), "degraded");

      // The Redis store itself fails fast rather than hanging.
      const rejected = performance.now();
      await assert.rejects(observer.get("shared"));
      assert.ok(performance.now() - rejected < 300);

      await redis.start();
      await until(() => store.status() === "ok", 5000, "status ok after restart");
      await store.set("after", "in redis again");
      await until(() => observer.status() === "ok", 5000, "observer reconnected");
      assert.equal(await observer.get("after"), "in redis again");
      assert.equal(await store.get("local"), null);

      assert.deepEqual(fallbackLog.lines, [
        "warn: redis store unavailable; serving local state",
        "info: redis store answers again; using shared state",
      ]);
      assert.deepEqual(redisLog.lines, [
        "warn: Redis connection lost; serving local state and retrying",
        "info: Redis connection restored",
      ]);
    } finally {
      await Promise.all([store.close(), observer.close()]);
    }
  },
});

test({
  name: "RedisStore starts degraded when Redis is not there, and closes cleanly",
  ignore: !hasRedis,
  async fn() {
    const redis = await startRedis();
    await redis.stop();
    const log = recordingLogger();
    const started = performance.now();
    const store = await RedisStore.connect({ url: redis.url, logger: log.logger });
    try {
      assert.ok(performance.now() - started < 1500);
      assert.equal(store.status(), "degraded");
      await assert.rejects(fast(store.readHealth(["e1"])));
      assert.deepEqual(log.lines, ["warn: Redis unreachable; serving local state and retrying"]);
    } finally {
      await store.close();
    }
  },
});

test({
  name: "FallbackStore skips a hung Redis for a while instead of waiting on every call",
  ignore: !hasRedis,
  async fn() {
    await using redis = await startRedis();
    const log = recordingLogger();
    // Wide margins, so a loaded machine's stalls (100-300 ms at load 16-20) cannot pass for waits: a call that
    // waits on Redis takes the 1 s command timeout, one that skips it far less; the skipping lasts 2 s, long
    // enough for the three calls, and Redis answers again (2.5 s) before it ends.
    const store = new FallbackStore({
      primary: await RedisStore.connect({ url: redis.url, commandTimeoutMs: 1000 }),
      logger: log.logger,
      retryAfterMs: 2000,
    });
    try {
      await store.set("k", "shared");
      assert.equal(await redis.command("CLIENT", "PAUSE", "2500", "ALL"), "OK");
      // The first call waits for the command timeout, then is served locally; later ones skip Redis at once.
      assert.equal(await fast(store.get("k"), 2000), null);
      const down = performance.now();
      assert.equal(store.status(), "degraded");
      assert.deepEqual(store.nodesDown(), [`127.0.0.1:${redis.port}`]);
      assert.equal(await fast(store.get("k"), 500), null);
      await fast(store.set("k", "local"), 500);
      assert.equal(await fast(store.get("k"), 500), "local");
      // Past the skipping (and the pause): the next call tries Redis again.
      await sleep(Math.max(0, down + 2200 - performance.now()));
      assert.equal(await store.get("k"), "shared");
      assert.deepEqual(log.lines, [
        "warn: redis store unavailable; serving local state",
        "info: redis store answers again; using shared state",
      ]);
    } finally {
      await store.close();
    }
  },
});

test({
  name:
    "FallbackStore: a Redis that turned slow is waited for once its late answer came, not skipped on every call",
  ignore: !hasRedis,
  async fn() {
    await using redis = await startRedis();
    // Every round trip takes 400 ms: past the 250 ms bound, as on a saturated machine.
    await using link = slowLink(redis.port, 400);
    const store = new FallbackStore({
      primary: await RedisStore.connect({ url: `redis://127.0.0.1:${link.port}` }),
    });
    const observer = await RedisStore.connect({ url: redis.url });
    try {
      await observer.set("k", "shared");
      // The first call waits out the bound and is served locally; its answer still comes, 400 ms after it was sent.
      assert.equal(await store.get("k"), null);
      await until(() => store.status() === "ok", 3000, "the late answer");
      // That answer is Redis's slowest recent one: the bound is now twice it, and the next calls get shared state.
      for (let i = 0; i < 3; i++) {
        assert.equal(await store.get("k"), "shared", `call ${i + 1} after the late answer`);
      }
      assert.equal(store.status(), "ok");
    } finally {
      await store.close();
      await observer.close();
    }
  },
});

test({
  name: "FallbackStore: a lock released while Redis did not answer is released on Redis too once it is back",
  ignore: !hasRedis,
  async fn() {
    await using redis = await startRedis();
    const store = new FallbackStore({
      primary: await RedisStore.connect({ url: redis.url, commandTimeoutMs: 200, namespace: "owed" }),
      retryAfterMs: 300,
    });
    try {
      // Redis stops answering: the lock script times out and is served locally, but Redis still runs it once it
      // answers again, so the lock is taken there too. The release comes before that, and is served locally.
      assert.equal(await redis.command("CLIENT", "PAUSE", "500", "ALL"), "OK");
      assert.equal((await store.readOrLock("entry", "lock", "token-a", 30_000)).locked, true);
      assert.equal(await store.deleteIfEquals("lock", "token-a"), true);
      await sleep(500);
      assert.equal(await redis.command("EXISTS", "owed:lock"), "1", "the lock script ran on Redis late");
      await store.get("anything");
      const deadline = Date.now() + 2000;
      while (await redis.command("EXISTS", "owed:lock") !== "0" && Date.now() < deadline) await sleep(20);
      assert.equal(await redis.command("EXISTS", "owed:lock"), "0", "released on Redis once it answered");
    } finally {
      await store.close();
    }
  },
});

test({
  name: "FallbackStore: an owed release never removes a lock taken again after Redis is back",
  ignore: !hasRedis,
  async fn() {
    await using redis = await startRedis();
    const store = new FallbackStore({
      primary: await RedisStore.connect({ url: redis.url, commandTimeoutMs: 200, namespace: "again" }),
      retryAfterMs: 300,
    });
    try {
      // An outage: a request leads and releases on local state, so the release is owed.
      await redis.stop();
      for (let i = 0; i < 100 && store.status() !== "degraded"; i++) await sleep(20);
      assert.equal((await store.readOrLock("cache:{K}", "coalesce:{K}", "instance", 30_000)).locked, true);
      assert.equal(await store.deleteIfEquals("coalesce:{K}", "instance"), true);
      await redis.start();
      for (let i = 0; i < 200 && store.status() !== "ok"; i++) await sleep(25);
      // The next request on the same key takes the lock on Redis, with the same (per-instance) token.
      assert.equal((await store.readOrLock("cache:{K}", "coalesce:{K}", "instance", 30_000)).locked, true);
      await sleep(100);
      assert.equal(
        await redis.command("GET", "again:coalesce:{K}"),
        "instance",
        "the new lock is still held",
      );
    } finally {
      await store.close();
    }
  },
});

test({
  name:
    "RedisStore: an endpoint's health lives a day past its cooldown, so removed endpoints do not stay for ever",
  ignore: !hasRedis,
  async fn() {
    await using redis = await startRedis();
    const store = await RedisStore.connect({ url: redis.url, namespace: "ttl" });
    const DAY = 86_400_000;
    const ttl = async (id: string) => Number(await redis.command("PTTL", `ttl:{${id}}:health`));
    try {
      await store.recordFailure("counted", { allowedFails: 3, cooldownMs: 60_000 });
      const counted = await ttl("counted");
      assert.ok(counted > DAY - 5_000 && counted <= DAY, `a failure count lives a day: ${counted}`);
      await store.coolDown("cooling", 600_000, "rate_limit");
      const cooling = await ttl("cooling");
      assert.ok(
        cooling > DAY + 590_000 && cooling <= DAY + 600_000,
        `a cooldown, a day past its end: ${cooling}`,
      );
      await store.recordFailure("both", { allowedFails: 1, cooldownMs: 60_000 });
      await store.recordFailure("both", { allowedFails: 2, cooldownMs: 60_000 });
      await store.recordSuccess("both");
      const both = await ttl("both");
      assert.ok(both > DAY + 50_000 && both <= DAY + 60_000, `a success keeps the cooldown's day: ${both}`);
    } finally {
      await store.close();
    }
  },
});

test({
  name: "RedisStore.close() lets commands already issued finish first",
  ignore: !hasRedis,
  async fn() {
    await using redis = await startRedis();
    const store = await RedisStore.connect({ url: redis.url, namespace: "closing" });
    const written = store.set("last", "words");
    await store.close();
    await written;
    assert.equal(await redis.command("GET", "closing:last"), "words");
  },
});

test({
  name: "FallbackStore passes a Redis error answer to the caller and keeps using Redis",
  ignore: !hasRedis,
  async fn() {
    await using redis = await startRedis();
    const log = recordingLogger();
    const store = new FallbackStore({
      primary: await RedisStore.connect({ url: redis.url, namespace: "ans" }),
      logger: log.logger,
    });
    try {
      await redis.command("LPUSH", "ans:list", "x");
      await assert.rejects(store.get("list"), /WRONGTYPE/);
      await store.set("after", "shared");
      assert.equal(await redis.command("GET", "ans:after"), "shared", "the next call still went to Redis");
      assert.deepEqual(log.lines, []);
    } finally {
      await store.close();
    }
  },
});
