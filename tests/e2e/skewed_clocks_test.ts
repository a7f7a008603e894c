/**
 * A fleet whose machines disagree on the time: three proxies on one redis-server, one on this machine's clock, one
 * an hour ahead and one an hour behind (libfaketime). A cooldown lasts what the upstream asked for on every one of
 * them: the one ahead does not send into it, the one behind does not keep the endpoint cooled for an hour after
 * it, and the one behind can cool the endpoint again for all of them.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy, startProxyProcess } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { hasFaketime, skewedClockEnv } from "../_support/skewed_clock.ts";
import { test } from "../_support/test.ts";

const HOUR = 3_600_000;

/** One chat request; the endpoint that answered it (`x-llmproxy-endpoint`). */
async function servedBy(url: string): Promise<string | null> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "x" }] }),
  });
  await response.body?.cancel();
  assert.equal(response.status, 200);
  return response.headers.get("x-llmproxy-endpoint");
}

/** Endpoint `a`'s state on `/stats` ("cooling_down" or "available"). */
async function stateOfA(url: string): Promise<string> {
  const stats = await (await fetch(`${url}/stats`)).json();
  return stats.endpoints.find((endpoint: { id: string }) => endpoint.id === "a").state;
}

/**
 * The wall clock a proxy process logs with, minus this one's, in ms (its first JSON log line's `time`). Waited
 * for, up to 5 s: stderr is read apart from stdout, so the line may come after `Listening on`.
 */
async function skewOf(proxy: { output(): string }): Promise<number> {
  const logLine = () =>
    proxy.output().split("\n").find((text) => text.startsWith("{") && text.includes('"time"'));
  for (let i = 0; i < 250 && !logLine(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  const line = logLine();
  assert.ok(line, `no log line in:\n${proxy.output()}`);
  return Date.parse(JSON.parse(line).time) - Date.now();
}

test({
  name: "clocks an hour apart: a 429's cooldown lasts its retry-after on every instance, and any can re-cool",
  ignore: !hasRedis || !hasFaketime,
  timeout: 60_000,
  async fn() {
    await using redis = await startRedis();
    await using a = await SimUpstream.start({ name: "a", quiet: true });
    await using b = await SimUpstream.start({ name: "b", quiet: true });
    // `a` serves everything while it can; `b` (weight 0) only what `a` cannot take.
    const yaml = groupYaml(
      [endpointYaml(a.url, { name: "a", weight: 1 }), endpointYaml(b.url, { name: "b", weight: 0 })],
      [`redis_url: ${redis.url}`],
    );
    const dir = await Deno.makeTempDir({ prefix: "llmproxy-skew-" });
    try {
      const config = `${dir}/llmproxy.yaml`;
      await Deno.writeTextFile(config, yaml);
      const args = ["--config", config, "--port", "0"];
      await using local = await startProxy(yaml, { logLevel: "error" });
      await using ahead = await startProxyProcess(args, { env: skewedClockEnv("+1h") });
      await using behind = await startProxyProcess(args, { env: skewedClockEnv("-1h") });
      // The skew is real: each process logs with its own clock.
      assert.ok(Math.abs(await skewOf(ahead) - HOUR) < 60_000, "the instance ahead runs an hour ahead");
      assert.ok(Math.abs(await skewOf(behind) + HOUR) < 60_000, "the instance behind runs an hour behind");

      // `a` answers one 429 asking for 3 s: the instance on the true clock fails over and cools `a` down.
      a.next({ kind: "status", status: 429, headers: { "retry-after": "3" } });
      const cooledAt = Date.now();
      assert.equal(await servedBy(local.url), "b");
      assert.equal(a.count(), 1);
      // During the 3 s, neither skewed instance sends to `a`: the one ahead read the deadline as an hour past.
      for (const proxy of [ahead, behind]) {
        assert.equal(await stateOfA(proxy.url), "cooling_down");
        assert.equal(await servedBy(proxy.url), "b");
      }
      assert.equal(a.count(), 1, "no request reached `a` while it cools down");

      // After it, the instance behind serves from `a` again: it kept `a` cooled for an hour and 3 s.
      while ((await stateOfA(behind.url)) !== "available") {
        assert.ok(
          Date.now() - cooledAt < 8_000,
          "the instance behind still cools `a` down 8 s after a 3 s 429",
        );
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(Date.now() - cooledAt >= 2_500, "the cooldown ended early");
      assert.equal(await servedBy(behind.url), "a");

      // The instance behind gets the next 429: the others skip `a` too (its deadline, by its clock, was an hour
      // before the one already stored, so it did not cool `a` down at all).
      a.next({ kind: "status", status: 429, headers: { "retry-after": "3" } });
      assert.equal(await servedBy(behind.url), "b");
      const reached = a.count();
      for (const proxy of [local, ahead]) assert.equal(await servedBy(proxy.url), "b");
      assert.equal(a.count(), reached, "the cooldown the instance behind set holds on the others");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
