/**
 * What a limited key's request costs Redis, counted with `MONITOR`: the admission (one script: every limit
 * checked, the request charged, a place among `max_parallel` taken), then one script after the answer that charges
 * what the request used (the tpm estimate corrected, the day's tokens) and gives the place back. The settlement and
 * the release were two commands before (a charge script and a `ZREM`). What the key sees is unchanged: the
 * correction lands (the next request's `x-ratelimit-remaining-tokens`), a `max_parallel: 1` key's next request is
 * let in, and its day's tokens are counted (its budget refuses once spent). Streamed and not.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { minuteClock } from "../_support/minute_clock.ts";
import { delay, endpointYaml, groupYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { monitor } from "../_support/redis_monitor.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-team-monitor-5d21";
const SCOPE = "{key:team-a}";

async function ask(proxy: RunningProxy, stream: boolean) {
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({
      model: "gpt-test",
      stream,
      ...(stream ? { stream_options: { include_usage: true } } : {}),
      max_tokens: 600,
      messages: [{ role: "user", content: "hi" }],
    }),
  });
  const body = await response.text();
  return {
    status: response.status,
    body,
    remaining: Number(response.headers.get("x-ratelimit-remaining-tokens")),
    tokens: stream ? streamTokens(body) : JSON.parse(body).usage?.total_tokens as number,
  };
}

function streamTokens(body: string): number {
  const last = body.split("\n").filter((line) => line.startsWith("data: {")).map((line) =>
    JSON.parse(line.slice(6))
  )
    .findLast((event) => event.usage);
  return last.usage.total_tokens;
}

/** What the answer set off (the settlement, usage) is written. */
async function settled(proxy: RunningProxy) {
  await proxy.services.usage.settled();
  await delay(150);
}

for (const stream of [false, true]) {
  test({
    name: `a limited key on Redis (${
      stream ? "streamed" : "JSON"
    }): two commands a request, limits as before`,
    ignore: !hasRedis,
    timeout: 30_000,
    async fn() {
      await using redis = await startRedis();
      await using sim = await SimUpstream.start({ name: "east", quiet: true });
      const limits = "rpm: 1000, tpm: 100000, max_parallel: 1, tokens_per_day: 100000";
      const yaml = groupYaml([endpointYaml(sim.url, { name: "east" })], [`redis_url: ${redis.url}`]) +
        `keys:\n  - {name: team-a, key: ${KEY}, ${limits}}\n`;
      await using proxy = await startProxy(yaml, { clock: minuteClock(), logLevel: "error" });

      const first = await ask(proxy, stream); // loads the scripts into Redis
      assert.equal(first.status, 200, first.body);
      await settled(proxy);
      let second;
      {
        await using watch = await monitor(redis.port);
        second = await ask(proxy, stream);
        assert.equal(second.status, 200, second.body);
        await settled(proxy);
        const onScope = () => watch.lines().filter((line) => line.includes(SCOPE));
        // The settlement is written after the answer: wait for it (bounded), then for anything after it.
        for (let i = 0; i < 40 && onScope().length < 2; i++) await delay(50);
        await delay(200);
        const mine = onScope();
        assert.equal(mine.length, 2, `commands on the key's counters:\n${mine.join("\n")}`);
        assert.equal(
          mine.filter((line) => /"zrem"/i.test(line)).length,
          0,
          "the release rode with the settlement",
        );
      }
      // The place was given back (max_parallel 1) and the estimate corrected to what the answer used: the next
      // request is let in, and its admission finds the second request's usage where its estimate was.
      const third = await ask(proxy, stream);
      assert.equal(third.status, 200, third.body);
      assert.equal(second.remaining - third.remaining, second.tokens, "the tpm correction landed");
      assert.ok(second.tokens > 0 && second.tokens < 600, `usage ${second.tokens}, estimate above 600`);
    },
  });
}

test({
  name: "a limited key on Redis: the day's tokens charged with the release refuse the key once spent",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({ name: "east", quiet: true });
    const yaml = groupYaml([endpointYaml(sim.url, { name: "east" })], [`redis_url: ${redis.url}`]) +
      `keys:\n  - {name: team-a, key: ${KEY}, max_parallel: 1, tokens_per_day: 1}\n`;
    await using proxy = await startProxy(yaml, { logLevel: "error" });
    assert.equal((await ask(proxy, false)).status, 200);
    await settled(proxy);
    const refused = await ask(proxy, false);
    assert.equal(refused.status, 429, refused.body);
    assert.match(refused.body, /tokens_per_day/);
  },
});
