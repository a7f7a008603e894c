/**
 * redis-server goes away under load and comes back: the proxy keeps answering every request from local state,
 * `/health` says "degraded" while Redis is away, and it reconnects by itself ("ok" again) with no request lost.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const WORKERS = 8;

async function health(url: string): Promise<{ status: string; store: { status: string } }> {
  const response = await fetch(`${url}/health`);
  return await response.json();
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

test({
  name: "killing and restarting redis-server under load fails no request; /health degraded, then ok",
  ignore: !hasRedis,
  fn: async () => {
    await using redis = await startRedis();
    await using a = await SimUpstream.start({ name: "a", quiet: true, latencyMs: 2 });
    await using b = await SimUpstream.start({ name: "b", quiet: true, latencyMs: 2 });
    await using proxy = await startProxy(
      groupYaml([endpointYaml(a.url, { name: "a" }), endpointYaml(b.url, { name: "b" })], [
        `redis_url: ${redis.url}`,
        "cache: true",
      ]),
      { logLevel: "info" },
    );
    assert.equal((await health(proxy.url)).status, "ok");

    let sent = 0;
    const failures: string[] = [];
    let running = true;
    const worker = async (w: number) => {
      for (let i = 0; running && i < 2000; i++) {
        sent++;
        // Unique prompts (cache misses: state and cache go through the store) plus some repeats (cache hits).
        const content = i % 4 === 0 ? "a repeated question" : `load ${w}-${i}`;
        const stream = i % 5 === 0;
        try {
          const response = await fetch(`${proxy.url}/v1/chat/completions`, {
            method: "POST",
            body: JSON.stringify({ model: "gpt-test", stream, messages: [{ role: "user", content }] }),
          });
          const text = await response.text();
          if (response.status !== 200) failures.push(`${response.status} ${text.slice(0, 200)}`);
          else if (stream && !text.includes("data: [DONE]")) {
            failures.push(`stream without [DONE]: ${text.slice(-200)}`);
          }
        } catch (error) {
          failures.push(String(error));
        }
      }
    };
    const load = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));

    await delay(300);
    const beforeOutage = sent;
    await redis.stop();
    await waitFor("/health to say degraded", async () => (await health(proxy.url)).status === "degraded");
    const during = await health(proxy.url);
    assert.equal(during.store.status, "degraded");
    await delay(500);
    const inOutage = sent - beforeOutage;

    await redis.start();
    await waitFor("/health to say ok again", async () => (await health(proxy.url)).status === "ok");
    await delay(300);
    running = false;
    await load;

    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${sent} requests failed`);
    assert.ok(inOutage > 20, `requests kept flowing during the outage (${inOutage})`);
    assert.ok(
      !proxy.logs.some((line) => JSON.parse(line).level === "error"),
      "the outage is a warning, never a request error",
    );
    const logs = proxy.logs.join("\n");
    assert.match(logs, /Redis connection lost/);
    assert.match(logs, /Redis connection restored/);
    // Back on Redis: shared state is written there again.
    const after = await fetch(`${proxy.url}/stats`);
    assert.equal((await after.json()).store.status, "ok");
  },
});
