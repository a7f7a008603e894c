/**
 * One process per core: two proxy processes started with --reuse-port (and one with general_settings.reuse_port)
 * listen on one port; the kernel spreads connections over them and they share the cache through Redis.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { freePort, hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

test({
  name: "two processes on one port with reuse_port share the load and the cache",
  ignore: !hasRedis || Deno.build.os !== "linux",
  timeout: 60_000,
  async fn() {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({ name: "a", quiet: true });
    const dir = await Deno.makeTempDir({ prefix: "llmproxy-reuse-" });
    try {
      // The sharing, not the 250 ms wait bound: a cache read past it on a loaded machine is a local miss.
      const settings = ["cache: true", `redis_url: ${redis.url}`, "redis_max_wait: 5"];
      await Deno.writeTextFile(
        `${dir}/flag.yaml`,
        groupYaml([endpointYaml(sim.url, { name: "a" })], settings),
      );
      await Deno.writeTextFile(
        `${dir}/key.yaml`,
        groupYaml([endpointYaml(sim.url, { name: "a" })], [...settings, "reuse_port: true"]),
      );
      const port = String(freePort());
      await using first = await startProxyProcess([
        "--config",
        `${dir}/flag.yaml`,
        "--port",
        port,
        "--reuse-port",
      ]);
      // The second process takes the same port through the config key instead of the flag.
      await using second = await startProxyProcess(["--config", `${dir}/key.yaml`, "--port", port]);
      assert.equal(first.url, second.url);

      // Each request on a new connection (its own client), so the kernel picks a process per request.
      const ask = async (content: string) => {
        using client = Deno.createHttpClient({});
        const response = await fetch(`${first.url}/v1/chat/completions`, {
          client,
          method: "POST",
          body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }] }),
        });
        await response.text();
        assert.equal(response.status, 200);
        return response.headers.get("x-llmproxy-cache");
      };
      const prompts = Array.from({ length: 30 }, (_, i) => `spread ${i}`);
      for (const prompt of prompts) assert.equal(await ask(prompt), "MISS");
      // Cache writes land after the answers: all 30 entries in Redis before they are asked again.
      const entries = () => redis.command("EVAL", "return #redis.call('KEYS', 'llmproxy:cache:*')", "0");
      for (let tries = 0; tries < 100 && await entries() !== "30"; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(await entries(), "30");
      const again = [];
      for (const prompt of prompts) again.push(await ask(prompt));
      assert.deepEqual(again, Array(30).fill("HIT"), "shared through Redis, whichever process answered");
      assert.equal(sim.count(), 30);
      const served = (output: string) =>
        output.split("\n").filter((line) => line.includes('"msg":"request"')).length;
      const [one, two] = [served(first.output()), served(second.output())];
      assert.ok(one > 0 && two > 0, `both processes served requests: ${one} and ${two}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
