/**
 * Store round trips on the request path, counted through a link that makes each Redis round trip cost 60 ms:
 * a cache hit is one round trip, a miss two (the entry read; then the coalescing lock and the endpoint health
 * together), and what is written after the answer (the entry, the lock's release) never delays it.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { slowLink } from "../_support/slow_link.ts";

const ROUND_TRIP_MS = 60;

Deno.test({
  name: "through a 60 ms Redis link: a hit takes one round trip, a miss two, writes after the answer none",
  ignore: !hasRedis,
  fn: async () => {
    await using redis = await startRedis();
    await using link = slowLink(redis.port, ROUND_TRIP_MS);
    await using sim = await SimUpstream.start({ quiet: true });
    await using proxy = await startProxy(
      groupYaml([endpointYaml(sim.url)], [`redis_url: redis://127.0.0.1:${link.port}`, "cache: true"]),
    );
    const timed = async (content: string) => {
      const started = performance.now();
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }] }),
      });
      await response.text();
      assert.equal(response.status, 200);
      return { ms: performance.now() - started, cache: response.headers.get("x-llmproxy-cache") };
    };
    await timed("warm up the connections");
    await proxy.services.cache.settled();
    const misses: number[] = [];
    const hits: number[] = [];
    for (let i = 0; i < 3; i++) {
      const miss = await timed(`question ${i}`);
      assert.equal(miss.cache, "MISS");
      misses.push(miss.ms);
      await proxy.services.cache.settled();
      const hit = await timed(`question ${i}`);
      assert.equal(hit.cache, "HIT");
      hits.push(hit.ms);
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[1];
    const rounds = (ms: number) => ms / ROUND_TRIP_MS;
    assert.ok(rounds(median(hits)) >= 0.9 && rounds(median(hits)) < 1.8, `hit: ${hits.map(Math.round)} ms`);
    assert.ok(
      rounds(median(misses)) >= 1.9 && rounds(median(misses)) < 2.8,
      `miss: ${misses.map(Math.round)} ms`,
    );
  },
});
