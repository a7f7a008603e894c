/**
 * The Redis connection comes back on its own even when ioredis gives up on it: ioredis ends a client for good when
 * its connector is closed under a reconnect attempt in flight, which its Sentinel failover detector does when the
 * failover message lands mid-attempt (seen on a loaded machine: both instances stayed on local state after a
 * failover). Here the connector is closed the same way, at the start of a reconnect.
 */

import assert from "node:assert/strict";
import { createClient } from "../../src/store/redis_client.ts";
import { ConnectionWatch } from "../../src/store/redis_watch.ts";
import { delay } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

async function until(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

test({
  name: "a Redis client that ioredis ended under a reconnect (connector closed mid-attempt) is started again",
  ignore: !hasRedis,
  async fn() {
    await using redis = await startRedis();
    const lines: string[] = [];
    const client = createClient({ url: redis.url });
    const watch = new ConnectionWatch(client, "test", (level, message) => lines.push(`${level}: ${message}`));
    try {
      await watch.firstAttempt(1000);
      assert.equal(client.status, "ready");
      const connector = (client as unknown as { connector: { disconnect(): void } }).connector;
      // What the failover detector of the lost connection does when Sentinel announces the new master.
      client.once("connecting", () => connector.disconnect());
      const ended = new Promise((resolve) => client.once("end", resolve));
      await redis.command("CLIENT", "KILL", "TYPE", "normal");
      await ended;
      await until("the client to be ready again", () => client.status === "ready");
      assert.equal(await client.ping(), "PONG");
      assert.deepEqual(lines.slice(-2), [
        "warn: Redis connection lost; serving local state and retrying",
        "info: Redis connection restored",
      ]);
    } finally {
      await watch.close();
    }
  },
});
