/**
 * The Python LLMProxy and this proxy on one Redis: the README's migration guide says they can share the server
 * when this proxy's namespace is not `llmproxy`. Checked on a real redis-server with keys laid out as the Python
 * version writes them (everything under `llmproxy:`), its `DELETE /cache` sweep (`SCAN MATCH llmproxy:*`, then
 * delete), and this proxy's traffic and `DELETE /cache`.
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

/** What the Python version keeps in Redis: cache entries, endpoint state, group members, affinity. */
const PYTHON_KEYS = {
  [`llmproxy:${"ab".repeat(32)}`]: '{"id":"chatcmpl-1"}',
  "llmproxy:endpoint:0123456789abcdef": '{"status":"healthy"}',
  "llmproxy:model_group:gpt-4o-mini": "0123456789abcdef",
  "llmproxy:response_affinity:resp_1": "0123456789abcdef",
};

/** The Python version's cache clear: every key matching `llmproxy:*`. */
async function pythonClearCache(redis: Redis): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  for (let round = 0; round < 1000; round++) {
    const [next, keys] = await redis.scan(cursor, "MATCH", "llmproxy:*", "COUNT", 500);
    if (keys.length > 0) deleted += await redis.del(...keys);
    cursor = next;
    if (cursor === "0") break;
  }
  return deleted;
}

const sorted = async (redis: Redis, pattern: string) => (await redis.keys(pattern)).sort();

test({
  name:
    "side by side on one Redis: neither version's cache clear touches the other's keys (namespace llmproxy-deno)",
  ignore: !hasRedis,
  timeout: 30_000,
  fn: async () => {
    await using server = await startRedis();
    const redis = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    try {
      for (const [key, value] of Object.entries(PYTHON_KEYS)) await redis.set(key, value);
      await using sim = await SimUpstream.start({ name: "a", quiet: true });
      const yaml = (namespace: string) =>
        groupYaml([endpointYaml(sim.url, { name: "a" })], [
          `redis_url: ${server.url}`,
          "cache: true",
          `cache_params: { namespace: ${namespace} }`,
        ]);
      await using proxy = await startProxy(yaml("llmproxy-deno"));
      const ask = async () => {
        const response = await fetch(`${proxy.url}/v1/chat/completions`, {
          method: "POST",
          body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "side by side" }] }),
        });
        await response.body?.cancel();
        await proxy.services.cache.settled();
        return response.headers.get("x-llmproxy-cache");
      };
      assert.equal(await ask(), "MISS");
      const created = await fetch(`${proxy.url}/v1/responses`, {
        method: "POST",
        body: JSON.stringify({ model: "gpt-test", input: "remember me" }),
      });
      await created.body?.cancel();
      // The affinity record is written off the answer's path: wait for it (bounded).
      let ours = await sorted(redis, "llmproxy-deno:*");
      for (let i = 0; i < 100 && ours.length < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        ours = await sorted(redis, "llmproxy-deno:*");
      }
      assert.ok(ours.some((key) => key.includes(":cache:")), ours.join());
      assert.ok(ours.length >= 2, ours.join());

      // The Python version clears its cache: every llmproxy:* key goes, none of this proxy's.
      assert.equal(await pythonClearCache(redis), Object.keys(PYTHON_KEYS).length);
      assert.deepEqual(await sorted(redis, "llmproxy-deno:*"), ours);
      assert.equal(await ask(), "HIT", "this proxy's cache survived the Python clear");

      // This proxy clears its cache: the Python version's keys stay.
      for (const [key, value] of Object.entries(PYTHON_KEYS)) await redis.set(key, value);
      const cleared = await fetch(`${proxy.url}/cache`, { method: "DELETE" });
      assert.equal(cleared.status, 200);
      await cleared.body?.cancel();
      assert.deepEqual(await sorted(redis, "llmproxy:*"), Object.keys(PYTHON_KEYS).sort());

      // Why the namespace matters: with the default `llmproxy`, this proxy's keys fall under the Python sweep.
      await using shared = await startProxy(yaml("llmproxy"));
      const response = await fetch(`${shared.url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({
          model: "gpt-test",
          messages: [{ role: "user", content: "default namespace" }],
        }),
      });
      await response.body?.cancel();
      await shared.services.cache.settled();
      const before = (await sorted(redis, "llmproxy:cache:*")).length;
      assert.ok(before >= 1);
      await pythonClearCache(redis);
      assert.equal((await sorted(redis, "llmproxy:cache:*")).length, 0);
    } finally {
      redis.disconnect();
    }
  },
});
