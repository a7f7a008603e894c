/**
 * Runtime keys while Redis does not answer, with two instances on one redis-server. A key created or revoked then
 * must not be made on one instance's local state: that instance would drop every other runtime key (its local
 * document holds only the new one), answer 404 for keys that exist, and the change would vanish, or a revoked key
 * come back, once Redis answers. And a change whose announcement is lost still reaches every instance.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const ADMIN = "sk-admin-5c1d";

function config(simUrl: string, redisUrl: string): string {
  return [
    "model_groups:",
    "  - model_group: gpt-test",
    "    models:",
    endpointYaml(simUrl, { name: "east" }),
    "general_settings:",
    "  cache: false",
    `  redis_url: ${redisUrl}`,
    `  admin_keys: [${ADMIN}]`,
  ].join("\n") + "\n";
}

async function admin(proxy: RunningProxy, method: string, path: string, body?: unknown) {
  const response = await fetch(`${proxy.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

async function chat(proxy: RunningProxy, key: string): Promise<number> {
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
  });
  await response.body?.cancel();
  return response.status;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await delay(20);
  }
  return Date.now() - started;
}

test({
  name:
    "runtime keys while Redis hangs: changes refused with 503, every key keeps working, instances agree after",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn(t) {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({ name: "east", quiet: true });
    await using a = await startProxy(config(sim.url, redis.url), { logLevel: "error" });
    await using b = await startProxy(config(sim.url, redis.url), { logLevel: "error" });

    await t.step("a change made while Redis hangs is refused, and nothing forks", async () => {
      const made = await admin(a, "POST", "/admin/keys", { name: "kept" });
      assert.equal(made.status, 201);
      const kept: string = made.json.key;
      await until("B knows the new key", async () => (await chat(b, kept)) === 200, 2000);

      await redis.signal("SIGSTOP");
      try {
        const asked = Date.now();
        const during = await admin(a, "POST", "/admin/keys", { name: "during" });
        assert.equal(during.status, 503, JSON.stringify(during.json));
        // Redis's command timeout (1 s), twice at most for an auto-pipelined command; never an unbounded wait.
        assert.ok(Date.now() - asked < 3000, `answered after ${Date.now() - asked} ms`);
        assert.equal(during.json.error.code, "store_unavailable");
        const revoked = await admin(a, "DELETE", "/admin/keys/kept");
        assert.equal(revoked.status, 503, JSON.stringify(revoked.json));
        // The keys last read stay in force on both instances.
        assert.equal(await chat(a, kept), 200);
        assert.equal(await chat(b, kept), 200);
        assert.deepEqual(
          (await admin(a, "GET", "/admin/keys")).json.data.map((k: { name: string }) => k.name),
          [
            "kept",
          ],
        );
      } finally {
        await redis.signal("SIGCONT");
      }

      // Redis is back: the same changes go through, on both instances.
      await until("a create goes through", async () => {
        const again = await admin(a, "POST", "/admin/keys", { name: "after" });
        return again.status === 201;
      }, 5000);
      assert.equal((await admin(a, "DELETE", "/admin/keys/kept")).status, 200);
      await until("B refuses the revoked key", async () => (await chat(b, kept)) === 401, 1000);
      assert.equal(await chat(a, kept), 401);
    });

    await t.step("a change whose announcement was lost reaches the other instance within 1 s", async () => {
      const made = await admin(a, "POST", "/admin/keys", { name: "quiet" });
      assert.equal(made.status, 201);
      const quiet: string = made.json.key;
      await until("B knows the key", async () => (await chat(b, quiet)) === 200, 2000);
      // Another instance revokes it, and Redis hangs before its PUBLISH: written, never announced.
      const doc = JSON.parse((await redis.command("GET", "llmproxy:keys:runtime"))!);
      const next = {
        version: crypto.randomUUID(),
        keys: doc.keys.filter((stored: { name: string }) => stored.name !== "quiet"),
      };
      assert.equal(await redis.command("SET", "llmproxy:keys:runtime", JSON.stringify(next)), "OK");
      assert.equal(await redis.command("SET", "llmproxy:keys:version", next.version), "OK");
      await until("A refuses the revoked key", async () => (await chat(a, quiet)) === 401, 1000);
      await until("B refuses the revoked key", async () => (await chat(b, quiet)) === 401, 1000);
    });
  },
});
