/**
 * Store round trips on the request path, counted through a link that makes each Redis round trip cost 300 ms:
 * a cache hit is one round trip, and so is a miss, JSON or streamed (the entry read, the coalescing lock and the
 * endpoint health go together); what is written after the answer (the entry, the lock's release) never delays it.
 *
 * The link is long so that the proxy's own time does not read as a round trip: on a loaded machine a streamed miss
 * over a 60 ms link took up to 246 ms (proxy, link and client share this process), past the 1.8 round trips
 * allowed; 300 ms leaves 240 ms for that, and two round trips (600 ms) still fail.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { slowLink } from "../_support/slow_link.ts";
import { test } from "../_support/test.ts";

const ROUND_TRIP_MS = 300;

test({
  name:
    "through a 300 ms Redis link: a hit and a miss (JSON or streamed) take one round trip each, writes none",
  ignore: !hasRedis,
  fn: async () => {
    await using redis = await startRedis();
    await using link = slowLink(redis.port, ROUND_TRIP_MS);
    await using sim = await SimUpstream.start({ quiet: true });
    await using proxy = await startProxy(
      groupYaml([endpointYaml(sim.url)], [
        `redis_url: redis://127.0.0.1:${link.port}`,
        "cache: true",
        // Past the link's round trip: the calls are counted, not sent to local state.
        "redis_max_wait: 5",
      ]),
    );
    const timed = async (content: string, stream = false) => {
      const started = performance.now();
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }], stream }),
      });
      await response.text();
      assert.equal(response.status, 200);
      return { ms: performance.now() - started, cache: response.headers.get("x-llmproxy-cache") };
    };
    await timed("warm up the connections");
    await proxy.services.cache.settled();
    await timed("warm up the stream path", true);
    await proxy.services.cache.settled();
    const misses: number[] = [];
    const streamMisses: number[] = [];
    const hits: number[] = [];
    for (let i = 0; i < 3; i++) {
      const miss = await timed(`question ${i}`);
      assert.equal(miss.cache, "MISS");
      misses.push(miss.ms);
      await proxy.services.cache.settled();
      const hit = await timed(`question ${i}`);
      assert.equal(hit.cache, "HIT");
      hits.push(hit.ms);
      const streamMiss = await timed(`streamed question ${i}`, true);
      assert.equal(streamMiss.cache, "MISS");
      streamMisses.push(streamMiss.ms);
      await proxy.services.cache.settled();
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[1];
    const rounds = (ms: number) => ms / ROUND_TRIP_MS;
    for (const [what, times] of [["hit", hits], ["miss", misses], ["streamed miss", streamMisses]] as const) {
      assert.ok(
        rounds(median(times)) >= 0.9 && rounds(median(times)) < 1.8,
        `${what}: ${times.map(Math.round)} ms`,
      );
    }
  },
});
