/**
 * What a client waits for a lookup that must be read patiently (whose and where a file is) while Redis hangs or
 * stalls. A hung Redis (SIGSTOP) is waited for until it has not answered for as long as a patient read waits
 * (2 s); after that each lookup is a 503 `store_unavailable` at once (one a second still tries Redis), instead of
 * each waiting out the command timeout, and lookups are answered again soon after Redis resumes. A Redis that
 * stalls and comes back (a slow one) is still waited for, even while its node is left alone by other calls.
 */

import assert from "node:assert/strict";
import OpenAI, { APIError, toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const KEYS = "keys:\n  - {name: team-a, key: team-a-key}\n";

async function setUp() {
  const redis = await startRedis();
  const sim = await SimUpstream.start({ name: "east", quiet: true });
  const yaml = groupYaml([endpointYaml(sim.url, { name: "east" })], [`redis_url: ${redis.url}`]) + KEYS;
  // Made through another instance, so the instance under test holds no record of its own.
  const maker = await startProxy(yaml);
  const proxy = await startProxy(yaml);
  const client = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "team-a-key", maxRetries: 0 });
  const file = await client(maker.url).files.create({
    file: await toFile(new TextEncoder().encode("%PDF-1.4"), "doc.pdf"),
    purpose: "user_data",
  });
  return {
    redis,
    proxy,
    chat: () =>
      fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: "Bearer team-a-key" },
        body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
      }).then((response) => response.body?.cancel()),
    client: client(proxy.url),
    file,
    [Symbol.asyncDispose]: async () => {
      await proxy.close();
      await maker.close();
      await sim.close();
      await redis[Symbol.asyncDispose]();
    },
  };
}

test({
  name:
    "Redis hung: once it has been silent 2 s, file lookups answer 503 store_unavailable at once; served again after",
  ignore: !hasRedis,
  timeout: 60_000,
  async fn() {
    await using setup = await setUp();
    const { client, file, redis } = setup;
    assert.equal((await client.files.retrieve(file.id)).id, file.id);
    const lookups: { at: number; ms: number }[] = [];
    await redis.signal("SIGSTOP");
    const stopped = performance.now();
    try {
      // A request's bounded calls find the node away after 250 ms. The lookups go on for 4.5 s: within the 5 s
      // after which a connection with no answer is dropped (and every call is served locally at once anyway).
      const chatted = setup.chat();
      while (performance.now() - stopped < 4500) {
        const started = performance.now();
        const error = await client.files.retrieve(file.id).then(() => undefined, (e) => e);
        lookups.push({ at: started - stopped, ms: performance.now() - started });
        const which = `lookup ${lookups.length} at ${lookups.at(-1)!.at.toFixed(0)} ms`;
        assert.ok(error instanceof APIError, `${which}: expected an API error, got ${error}`);
        assert.equal(error.status, 503, `${which}: ${error.message}`);
        assert.equal(error.code, "store_unavailable");
        assert.equal(error.headers?.get("retry-after"), "1");
        await delay(20);
      }
      await chatted;
    } finally {
      await redis.signal("SIGCONT");
    }
    const shown = lookups.map(({ at, ms }) => `${at.toFixed(0)}+${ms.toFixed(0)}`).join(" ");
    // The first ones wait for Redis (a slow one would answer), up to its 1 s command timeout.
    assert.ok(lookups[0].ms >= 900, `the first lookup waited for the hung store: ${shown}`);
    // Silent for 2 s: hung, not slow. Each lookup is told at once (was ~1 s each, until the connection dropped).
    const late = lookups.filter(({ at }) => at >= 2500).map(({ ms }) => ms).sort((a, b) => a - b);
    assert.ok(late.length >= 10, `${late.length} lookups from 2.5 s on: ${shown}`);
    assert.ok(late[Math.floor(late.length / 2)] < 100, `their median: ${shown}`);

    const resumed = performance.now();
    let found: string | undefined;
    while (found === undefined && performance.now() - resumed < 5000) {
      found = await client.files.retrieve(file.id).then((f) => f.id, () => delay(50).then(() => undefined));
    }
    assert.equal(found, file.id);
    const back = performance.now() - resumed;
    assert.ok(back < 3000, `answered again ${back.toFixed(0)} ms after Redis resumed`);
  },
});

test({
  name:
    "Redis stalling 700 ms at a time: file lookups during each stall wait for it and are answered, never a 503",
  ignore: !hasRedis,
  timeout: 60_000,
  async fn() {
    await using setup = await setUp();
    const { client, file, redis, chat } = setup;
    for (let round = 0; round < 5; round++) {
      await redis.signal("SIGSTOP");
      let lookups: Promise<unknown>[] = [];
      try {
        // A request's bounded calls leave the node alone after 250 ms; the lookups come after that.
        const chatted = chat();
        await delay(350);
        lookups = Array.from({ length: 3 }, () => client.files.retrieve(file.id).then((f) => f.id, (e) => e));
        await delay(350);
        await redis.signal("SIGCONT");
        await chatted;
      } finally {
        await redis.signal("SIGCONT");
      }
      assert.deepEqual(await Promise.all(lookups), [file.id, file.id, file.id], `round ${round}`);
      await delay(100);
    }
  },
});
