/**
 * Shutdown after a config reload waits for the cache write of a stream that began before the reload: the real CLI,
 * Redis behind a slow link (each command reaches it 300 ms late), SIGHUP mid-stream, SIGTERM as soon as the client
 * has the whole stream. The entry is in Redis, and a fresh process answers the same request from it.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { slowLink } from "../_support/slow_link.ts";
import { test } from "../_support/test.ts";

const LINK_MS = 300;

const ask = (url: string) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({
      model: "gpt-test",
      stream: true,
      messages: [{ role: "user", content: "tell me" }],
    }),
  });

test({
  name:
    "a stream begun before a SIGHUP and ended just before SIGTERM: its entry reaches Redis; a restart hits it",
  ignore: !hasRedis,
  timeout: 40_000,
  async fn() {
    await using redis = await startRedis();
    await using link = slowLink(redis.port, LINK_MS);
    await using sim = await SimUpstream.start({ name: "a", quiet: true, chunks: 8, chunkDelayMs: 100 });
    const yaml = (redisPort: number, timeout: number) =>
      groupYaml([endpointYaml(sim.url, { name: "a", extra: `          timeout: ${timeout}` })], [
        "cache: true",
        `redis_url: redis://127.0.0.1:${redisPort}`,
        // Past the link's delay: the write goes to Redis, not to local state.
        "redis_max_wait: 5",
      ]);
    const dir = await Deno.makeTempDir();
    const path = `${dir}/llmproxy.yaml`;
    try {
      await Deno.writeTextFile(path, yaml(link.port, 60));
      await using first = await startProxyProcess(["--config", path, "--port", "0"]);
      const response = await ask(first.url);
      assert.equal(response.headers.get("x-llmproxy-cache"), "MISS");
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = (await reader.read()).value ?? "";

      // A reload mid-stream (a change the new config really has): the stream stays on the generation it began on.
      await Deno.writeTextFile(path, yaml(link.port, 61));
      first.child.kill("SIGHUP");
      const deadline = Date.now() + 10_000;
      while (!first.output().includes('"msg":"config reloaded"')) {
        if (Date.now() > deadline) throw new Error(`no reload:\n${first.output()}`);
        await delay(20);
      }
      for (let next = await reader.read(); !next.done; next = await reader.read()) text += next.value;
      assert.match(text, /data: \[DONE\]/);
      // The entry's write left after the terminal event; it is still on the link when shutdown begins.
      assert.equal(await first.stop("SIGTERM"), 0, first.output());

      const entries = await redis.command("EVAL", "return #redis.call('keys', '*cache*')", "0");
      assert.equal(entries, "1", "the entry is in Redis");
      await Deno.writeTextFile(path, yaml(redis.port, 61));
      await using second = await startProxyProcess(["--config", path, "--port", "0"]);
      const again = await ask(second.url);
      assert.equal(again.headers.get("x-llmproxy-cache"), "HIT");
      assert.equal(await again.text(), text);
      assert.equal(sim.count("chat/completions"), 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
