/**
 * While a Redis node is away, the coalescing locks of cache misses are taken and released locally, and each
 * release is owed to the node (a lock script whose reply was lost may hold the key there). They were all sent
 * again with every retry of the node (once a second), ahead of the retrying call: to a hung node that is every
 * owed release once per second, each waiting out the command timeout, and all of them run when it resumes. Now a
 * retry sends one owed release first, as the probe, and the rest only once that one is answered.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { ONE_KEY_SCRIPTS } from "../../src/store/redis_scripts.ts";
import { test } from "../_support/test.ts";

test({
  name: "Redis hung: owed lock releases are sent once after it answers, not again with every retry",
  ignore: !hasRedis,
  timeout: 40_000,
  async fn() {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({ name: "east", quiet: true, record: false });
    await using proxy = await startProxy(
      groupYaml([endpointYaml(sim.url, { name: "east" })], ["cache: true", `redis_url: ${redis.url}`]),
      { logLevel: "error" },
    );
    const chat = async (content: string) => {
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }] }),
      });
      await response.body?.cancel();
      return response.status;
    };
    // Every owed release Redis runs, counted on a MONITOR connection by its script's SHA-1.
    const digest = await crypto.subtle.digest(
      "SHA-1",
      new TextEncoder().encode(ONE_KEY_SCRIPTS.llmproxyDeleteIfEquals),
    );
    const sha = Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
    const monitor = await Deno.connect({ hostname: "127.0.0.1", port: redis.port });
    await monitor.write(new TextEncoder().encode("MONITOR\r\n"));
    let seen = "";
    const reading = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of monitor.readable) seen += decoder.decode(chunk, { stream: true });
      } catch { /* closed */ }
    })();
    const releases = () => seen.split(`"evalsha" "${sha}"`).length - 1;

    assert.equal(await chat("warm"), 200);
    await delay(200);
    const owed = 150;
    await redis.signal("SIGSTOP");
    try {
      // 150 misses over ~3.5 s of hang, each lock released locally and owed; the node is retried every second.
      for (let i = 0; i < owed; i++) {
        assert.equal(await chat(`miss ${i}`), 200);
        await delay(20);
      }
    } finally {
      await redis.signal("SIGCONT");
    }
    // Shared again; the owed releases are paid by the next calls.
    const resumed = Date.now();
    while (proxy.services.store.status() !== "ok" || Date.now() - resumed < 1500) {
      if (Date.now() - resumed > 8000) throw new Error("the store never said ok again");
      assert.equal(await chat(`after ${Date.now()}`), 200);
      await delay(100);
    }
    await delay(500);
    monitor.close();
    await reading;
    // Each owed release once (and a probe or two): before, every retry of the node sent all of them again.
    assert.ok(releases() >= owed / 2, `${releases()} releases ran (the misses owed ${owed})`);
    assert.ok(releases() < 1.3 * owed, `${releases()} releases ran for ${owed} misses`);
  },
});
