/**
 * Nothing a request spent is lost to a Redis that stalls or dies (issue 22, session 22).
 *
 * - A usage tally write that went out to a hung Redis and timed out, then lost with the server (SIGKILL, restarted
 *   from its append-only file), is sent again, and counted once: it was not resent before (a resend could have
 *   counted it twice), so the requests it carried were missing from `/admin/usage`.
 * - Token budget charges made on one instance while Redis was left alone are added to Redis once it answers, so
 *   another instance refuses the key whose budget was spent meanwhile (it let it through before).
 * - Usage stream entries made while Redis was down are appended once it is back, in the order they were made
 *   (they were dropped before).
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-team-a-lost-usage-7b2";
const BUDGET_KEY = "sk-team-b-lost-usage-4d8";
const ADMIN = "sk-admin-lost-usage-1c6";

function config(simUrl: string, redisUrl: string, extra: string[] = []): string {
  return [
    "model_groups:",
    "  - model_group: gpt-test",
    "    models:",
    endpointYaml(simUrl, { name: "east" }),
    "general_settings:",
    "  cache: false",
    `  redis_url: ${redisUrl}`,
    `  admin_keys: [${ADMIN}]`,
    ...extra,
    "keys:",
    `  - {name: team-a, key: ${KEY}}`,
    `  - {name: team-b, key: ${BUDGET_KEY}, tokens_per_day: 100}`,
  ].join("\n") + "\n";
}

async function chat(proxy: RunningProxy, key = KEY, requestId?: string) {
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, ...requestId ? { "x-request-id": requestId } : {} },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
  });
  const body = await response.json();
  return { status: response.status, body };
}

async function admin(proxy: RunningProxy, path: string) {
  const response = await fetch(`${proxy.url}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  assert.equal(response.status, 200, path);
  return await response.json();
}

/** Waits (at most 10 s) until the proxy's store says ok again. */
async function storeOk(proxy: RunningProxy) {
  const since = Date.now();
  while ((await admin(proxy, "/stats")).store.status !== "ok") {
    assert.ok(Date.now() - since < 10_000, "the store never said ok again");
    await delay(50);
  }
}

for (const end of ["killed", "resumed"] as const) {
  test({
    name: `Redis hung with a tally write out, then ${end}: /admin/usage counts each request once`,
    ignore: !hasRedis,
    timeout: 60_000,
    async fn() {
      await using redis = await startRedis({ args: ["--appendonly", "yes", "--appendfsync", "always"] });
      await using sim = await SimUpstream.start({ name: "east", quiet: true, record: false });
      await using proxy = await startProxy(config(sim.url, redis.url), { logLevel: "warn" });
      let made = 0;
      let running = true;
      const load = Promise.all([0, 1].map(async () => {
        for (let i = 0; i < 2000 && running; i++) {
          assert.equal((await chat(proxy)).status, 200);
          made++;
          await delay(20);
        }
      }));
      try {
        await delay(700);
        // Hung: a tally write goes out (`/admin/usage` sends what was counted so far) and gets no answer, not even
        // within the command timeout. Killed, the server never ran it (restarted from its append-only file);
        // resumed, it runs it late, and the proxy, which could not know, sends it again.
        await redis.signal("SIGSTOP");
        try {
          await admin(proxy, "/admin/usage");
          await delay(end === "killed" ? 300 : 1200);
        } finally {
          if (end === "killed") {
            await redis.signal("SIGKILL");
            await redis.start();
          } else await redis.signal("SIGCONT");
        }
        await delay(1500);
      } finally {
        running = false;
        await load;
      }
      await storeOk(proxy);
      const counted = async () => {
        const rows: { key: string; requests: number }[] = (await admin(proxy, "/admin/usage")).data;
        return rows.filter((row) => row.key === "team-a").reduce((sum, row) => sum + row.requests, 0);
      };
      let requests = await counted();
      for (let i = 0; i < 40 && requests !== made; i++) requests = await delay(50).then(counted);
      assert.equal(requests, made, `/admin/usage after Redis was ${end} with a tally write out`);
      // What another instance reads from Redis: the same.
      await using other = await startProxy(config(sim.url, redis.url), { logLevel: "warn" });
      const today = (await admin(other, "/stats")).usage_today["team-a"];
      assert.equal(today.requests, made, "/stats of another instance");
    },
  });
}

test({
  name:
    "tokens spent on one instance while Redis hung count against the key's budget on another once it is back",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({ name: "east", quiet: true, record: false });
    await using a = await startProxy(config(sim.url, redis.url), { logLevel: "warn" });
    await using b = await startProxy(config(sim.url, redis.url), { logLevel: "warn" });
    assert.equal((await chat(b, BUDGET_KEY)).status, 200, "the budget has room before");
    await redis.signal("SIGSTOP");
    let spent = 0;
    try {
      // Until A refuses the key on its own count (or 40 requests): ~10 requests of ~15 tokens each.
      for (let i = 0; i < 40; i++) {
        const answer = await chat(a, BUDGET_KEY);
        if (answer.status !== 200) break;
        spent += answer.body.usage.total_tokens;
      }
    } finally {
      await redis.signal("SIGCONT");
    }
    assert.ok(spent >= 100, `spent ${spent} tokens on A while Redis hung`);
    await storeOk(a);
    await delay(300);
    const refused = await chat(b, BUDGET_KEY);
    assert.equal(refused.status, 429, "B lets the key through: A's spend during the stall stayed on A");
    assert.equal(refused.body.error.code, "insufficient_quota");
  },
});

test({
  name: "usage stream entries made while Redis was down are appended once it is back, in order",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis({ args: ["--appendonly", "yes", "--appendfsync", "always"] });
    await using sim = await SimUpstream.start({ name: "east", quiet: true, record: false });
    const stream = ["  usage_stream: {enabled: true, stream_key: lost-usage, max_len: 1000}"];
    await using proxy = await startProxy(config(sim.url, redis.url, stream), { logLevel: "warn" });
    const ids: string[] = [];
    const send = async (phase: string, count: number) => {
      for (let i = 0; i < count; i++) {
        ids.push(`req-${phase}-${i}`);
        assert.equal((await chat(proxy, KEY, ids.at(-1))).status, 200);
      }
    };
    await send("before", 5);
    await redis.stop();
    try {
      await send("down", 20);
    } finally {
      await redis.start();
    }
    await storeOk(proxy);
    await send("after", 5);
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      let entries: [string, string[]][] = [];
      for (let i = 0; i < 40; i++) {
        entries = await client.xrange("lost-usage", "-", "+");
        if (entries.length >= ids.length) break;
        await delay(50);
      }
      const appended = entries.map(([, fields]) => fields[fields.indexOf("request_id") + 1]);
      assert.deepEqual(appended, ids, "every entry, once, in the order the requests were made");
    } finally {
      client.disconnect();
    }
  },
});
