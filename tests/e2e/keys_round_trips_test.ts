/**
 * A key's limits cost no Redis round trip of their own: through a link that makes each round trip cost 200 ms, a
 * request of a key with every limit set (rpm, tpm, max_parallel, budgets) still waits for one round trip, with the
 * cache on (hit, miss, streamed miss: the checks go out with the entry read) and off (the checks alone).
 * What is charged after the answer (tokens, USD, the place among max_parallel, usage) never delays it.
 *
 * The round trip is long so that a loaded machine cannot make one look like two. The proxy, the link and this
 * client share one thread, which on a machine at load ~10 (2 cores) waits for a core for tens of ms within one
 * request: with a 60 ms link, one-round-trip requests took 120-176 ms and the median of three read as two round
 * trips in 2 of 5 runs. Two round trips take 400 ms or more whatever the load, and fail the bound.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { slowLink } from "../_support/slow_link.ts";
import { test } from "../_support/test.ts";

const ROUND_TRIP_MS = 200;
const KEY = "sk-limited-9d2a";
const LIMITS = "rpm: 1000, tpm: 10000000, max_parallel: 8, tokens_per_day: 100000000, " +
  "tokens_per_month: 100000000, usd_per_month: 1000";

async function timed(proxy: RunningProxy, content: string, stream = false) {
  const started = performance.now();
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }], stream }),
  });
  await response.text();
  const ms = performance.now() - started;
  assert.equal(response.status, 200);
  assert.ok(response.headers.get("x-ratelimit-remaining-requests"), "the key's limits were checked");
  // What the answer set off (charges, the lease's release, usage, a cache write) ends before the next request.
  await proxy.services.cache.settled();
  await proxy.services.usage.settled();
  await new Promise((resolve) => setTimeout(resolve, 2 * ROUND_TRIP_MS));
  return { ms, cache: response.headers.get("x-llmproxy-cache") };
}

const median = (values: number[]) => values.sort((a, b) => a - b)[1];

test({
  name: "through a 200 ms Redis link: a limited key's request takes one round trip (cache on and off)",
  ignore: !hasRedis,
  timeout: 40_000,
  async fn() {
    await using redis = await startRedis();
    await using link = slowLink(redis.port, ROUND_TRIP_MS);
    await using sim = await SimUpstream.start({ quiet: true });
    const yaml = (cache: boolean) =>
      groupYaml([endpointYaml(sim.url)], [`redis_url: redis://127.0.0.1:${link.port}`, `cache: ${cache}`]) +
      `keys:\n  - {name: limited, key: ${KEY}, ${LIMITS}}\n`;
    const times: Record<string, number[]> = { hit: [], miss: [], "streamed miss": [], "cache off": [] };
    {
      await using proxy = await startProxy(yaml(true));
      await timed(proxy, "warm up");
      await timed(proxy, "warm up the stream path", true);
      for (let i = 0; i < 3; i++) {
        const miss = await timed(proxy, `question ${i}`);
        assert.equal(miss.cache, "MISS");
        times.miss.push(miss.ms);
        const hit = await timed(proxy, `question ${i}`);
        assert.equal(hit.cache, "HIT");
        times.hit.push(hit.ms);
        times["streamed miss"].push((await timed(proxy, `streamed ${i}`, true)).ms);
      }
    }
    {
      await using proxy = await startProxy(yaml(false));
      await timed(proxy, "warm up");
      for (let i = 0; i < 3; i++) times["cache off"].push((await timed(proxy, `question ${i}`)).ms);
    }
    for (const [what, values] of Object.entries(times)) {
      const rounds = median(values) / ROUND_TRIP_MS;
      assert.ok(rounds >= 0.9 && rounds < 1.8, `${what}: ${values.map(Math.round)} ms`);
    }
  },
});
