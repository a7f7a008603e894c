/**
 * A key's `tpm` is charged the request's estimate before the call and corrected to the answer's usage. A request
 * that got no answer (every endpoint failed: a 503) used no tokens: its estimate is given back, as a failed
 * attempt's is to the endpoint's budget. Else a key retrying through an outage spends its minute on failures and
 * is refused (429 `tpm`) once the upstream is back. Run on the memory store and on Redis.
 */

import assert from "node:assert/strict";
import { type Clock, systemClock } from "../../src/core/clock.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-team-tpm-71c4";

/** The proxy's clock, 500 ms into a UTC minute, so that both requests fall into one window. */
function minuteClock(): Clock {
  const real = Date.now();
  const offset = Math.ceil(real / 60_000) * 60_000 + 500 - real;
  return { now: () => Date.now() + offset, sleep: systemClock.sleep };
}

for (const store of ["memory", "redis"] as const) {
  test(`key tpm (${store}): a request every endpoint failed gives its estimate back`, {
    ignore: store === "redis" && !hasRedis,
    timeout: 20_000,
  }, async () => {
    await using redis = store === "redis" ? await startRedis() : undefined;
    await using sim = await SimUpstream.start({ name: "east", quiet: true });
    const yaml = groupYaml([endpointYaml(sim.url, { name: "east" })], [
      "num_retries: 0",
      "allowed_fails: 5",
      ...(redis ? [`redis_url: ${redis.url}`] : []),
    ]) + `keys:\n  - {name: team-a, key: ${KEY}, tpm: 1000}\n`;
    await using proxy = await startProxy(yaml, { clock: minuteClock(), logLevel: "error" });
    // About 610 tokens estimated each (the prompt's characters / 4, plus max_tokens): two fit in 1000 only if
    // the first one, which fails, gives its estimate back.
    const ask = async () => {
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "gpt-test",
          max_tokens: 600,
          messages: [{ role: "user", content: "hi" }],
        }),
      });
      const body = await response.json();
      return {
        status: response.status,
        body,
        remaining: response.headers.get("x-ratelimit-remaining-tokens"),
      };
    };

    sim.always({ kind: "status", status: 500 });
    const failed = await ask();
    assert.equal(failed.status >= 500, true, JSON.stringify(failed.body));
    sim.reset();
    // The correction is written off the response path: give it a moment.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const served = await ask();
    assert.equal(served.status, 200, JSON.stringify(served.body));
  });
}
