/**
 * A key's `tpm` is charged the request's estimate before the call and corrected to the usage the answer reports.
 * An upstream success that reports no usage (an upstream that leaves it out, a stream cut before its usage) keeps
 * the estimate: corrected to 0, a key could make unlimited tokens past its tpm that way. A 400 (the caller's own
 * mistake, nothing generated) is still corrected to 0. Run on the memory store and on Redis.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { minuteClock } from "../_support/minute_clock.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-team-tpm-5d21";

const NO_USAGE = {
  id: "chatcmpl-1",
  object: "chat.completion",
  created: 1,
  model: "upstream-model",
  choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }],
};

for (const store of ["memory", "redis"] as const) {
  test(`key tpm (${store}): an upstream 200 with no usage keeps its estimate; a 400 gives it back`, {
    ignore: store === "redis" && !hasRedis,
    timeout: 20_000,
  }, async () => {
    await using redis = store === "redis" ? await startRedis() : undefined;
    await using sim = await SimUpstream.start({ name: "east", quiet: true });
    const yaml = groupYaml([endpointYaml(sim.url, { name: "east" })], [
      "num_retries: 0",
      ...(redis ? [`redis_url: ${redis.url}`] : []),
    ]) + `keys:\n  - {name: team-a, key: ${KEY}, tpm: 1000}\n`;
    await using proxy = await startProxy(yaml, { clock: minuteClock(), logLevel: "error" });
    // About 610 tokens estimated each (the prompt's characters / 4, plus max_tokens): a second one fits in the
    // minute's 1000 only if the first one's estimate was corrected down.
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
      return { status: response.status, body: await response.text() };
    };
    // The correction is written off the response path: give it a moment.
    const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

    sim.always({ kind: "status", status: 400 });
    assert.equal((await ask()).status, 400);
    await settle();
    sim.always({ kind: "status", status: 200, body: NO_USAGE });
    const unreported = await ask();
    assert.equal(unreported.status, 200, unreported.body);
    await settle();
    const refused = await ask();
    assert.equal(refused.status, 429, `the unreported answer kept its estimate: ${refused.body}`);
    assert.match(refused.body, /tpm/);
  });
}
