/**
 * While redis-server is away, the proxy's state really lives on locally, not just its answers: a stored answer is a
 * HIT, and an endpoint that reaches `allowed_fails` cools down and is skipped. (Every request would still succeed
 * if the fallback store silently dropped that state: the cache and the health tracker both treat a store error as
 * "nothing known". So this checks the state itself.)
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

async function chat(url: string, content: string): Promise<{ status: number; cache: string | null }> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }] }),
  });
  await response.body?.cancel();
  return { status: response.status, cache: response.headers.get("x-llmproxy-cache") };
}

test({
  name: "with redis-server stopped, answers are cached and cooldowns kept on local state",
  ignore: !hasRedis,
  timeout: 20_000,
  fn: async () => {
    await using redis = await startRedis();
    await using a = await SimUpstream.start({ name: "a", quiet: true });
    await using b = await SimUpstream.start({ name: "b", quiet: true });
    await using proxy = await startProxy(
      groupYaml([endpointYaml(a.url, { name: "a" }), endpointYaml(b.url, { name: "b" })], [
        `redis_url: ${redis.url}`,
        "cache: true",
        "allowed_fails: 1",
      ]),
      { logLevel: "error" },
    );
    await redis.stop();
    const deadline = Date.now() + 8000;
    while ((await (await fetch(`${proxy.url}/health`)).json()).status !== "degraded") {
      if (Date.now() > deadline) throw new Error("/health never said degraded");
      await delay(50);
    }

    assert.deepEqual(await chat(proxy.url, "asked during the outage"), { status: 200, cache: "MISS" });
    await proxy.services.cache.settled();
    assert.deepEqual(await chat(proxy.url, "asked during the outage"), { status: 200, cache: "HIT" });

    const before = a.count();
    a.always({ kind: "status", status: 500 });
    for (let i = 0; i < 8; i++) assert.equal((await chat(proxy.url, `cooldown ${i}`)).status, 200);
    assert.equal(a.count() - before, 1, "one failure cooled a down, and it was skipped after that");
  },
});
