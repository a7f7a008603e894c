/**
 * A key's `tpm` counts the tokens its requests make an upstream process: charged as an estimate before the call,
 * corrected to the answer's usage. A cache hit makes no upstream process anything, so its estimate is given back
 * (it still counts against `rpm`); before, each hit kept its whole estimate, and a key served from the cache was
 * refused with 429 `tpm` after a few hits. An upstream's 400 (the caller's mistake) reports no usage: its estimate
 * is given back too, as for a request that got no answer. Run on the memory store and on Redis, through the
 * official client and raw fetch.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { minuteClock } from "../_support/minute_clock.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-team-tpm-cache-3b7";
const settle = () => new Promise((resolve) => setTimeout(resolve, 150));

for (const store of ["memory", "redis"] as const) {
  test(`key tpm (${store}): cache hits and upstream 400s give their estimate back; rpm still counts hits`, {
    ignore: store === "redis" && !hasRedis,
    timeout: 30_000,
  }, async () => {
    await using redis = store === "redis" ? await startRedis() : undefined;
    await using sim = await SimUpstream.start({ name: "east", quiet: true });
    const yaml = groupYaml([endpointYaml(sim.url, { name: "east" })], [
      "cache: true",
      "num_retries: 0",
      ...(redis ? [`redis_url: ${redis.url}`] : []),
    ]) + `keys:\n  - {name: team-a, key: ${KEY}, tpm: 1000, rpm: 12}\n`;
    await using proxy = await startProxy(yaml, { clock: minuteClock(), logLevel: "error" });
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 });
    // About 610 tokens estimated each (the prompt's characters / 4, plus max_tokens): one fits in 1000, two do
    // not unless the first gave most of its estimate back.
    const question = {
      model: "gpt-test",
      max_tokens: 600,
      messages: [{ role: "user" as const, content: "hi" }],
    };
    const ask = async (content = "hi") => {
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ ...question, messages: [{ role: "user", content }] }),
      });
      return {
        status: response.status,
        body: await response.json(),
        cache: response.headers.get("x-llmproxy-cache"),
        remaining: Number(response.headers.get("x-ratelimit-remaining-tokens")),
      };
    };

    const miss = await ask();
    assert.equal(miss.status, 200, JSON.stringify(miss.body));
    const used = miss.body.usage.total_tokens as number;
    await settle();
    // Five hits, through the SDK and raw fetch: none is refused, and the minute's tokens stay what the miss used.
    for (let i = 0; i < 5; i++) {
      if (i % 2 === 0) {
        const { data, response } = await client.chat.completions.create(question).withResponse();
        assert.equal(response.headers.get("x-llmproxy-cache"), "HIT");
        assert.equal(data.usage?.total_tokens, used);
      } else {
        const hit = await ask();
        assert.equal(hit.status, 200, JSON.stringify(hit.body));
        assert.equal(hit.cache, "HIT");
      }
      await settle();
    }
    assert.equal(sim.requests.length, 1, "the hits never reached the upstream");
    const after = await ask();
    assert.equal(after.cache, "HIT");
    // Charged its estimate at admission (the header's figure), given back after.
    assert.ok(after.remaining >= 1000 - used - 700, `tokens left after the hits: ${after.remaining}`);
    await settle();

    // An upstream 400 used no tokens: two in a row fit in the minute, and a request after them too.
    sim.always({ kind: "status", status: 400 });
    for (const content of ["bad one", "bad two"]) {
      const refused = await ask(content);
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      await settle();
    }
    sim.reset();
    const served = await ask("fine now");
    assert.equal(served.status, 200, JSON.stringify(served.body));
    await settle();

    // rpm still counts every request, hits included: 10 so far, 12 a minute.
    assert.equal((await ask()).status, 200);
    assert.equal((await ask()).status, 200);
    const over = await ask();
    assert.equal(over.status, 429, JSON.stringify(over.body));
    assert.match(over.body.error.message, /rpm/);
  });
}
