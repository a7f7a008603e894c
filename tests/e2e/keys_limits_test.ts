/**
 * Keys with limits, end to end on real sockets: two proxy instances on one redis-server and three keys. A key with
 * rpm 5 gets its 6th request in the minute answered 429 with a correct Retry-After whichever instance serves it; a
 * token budget stops a key once the upstream's reported usage reaches it; a key's streamed chat is counted while
 * the client sees the stream it would get without the proxy; a group the key may not use answers like an unknown
 * one; key B cannot read or continue key A's response.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { minuteClock } from "../_support/minute_clock.ts";
import { test } from "../_support/test.ts";

const KEY_A = "sk-team-a-5b1e";
const KEY_B = "sk-team-b-77c0";
const KEY_C = "sk-team-c-13fd";
const ADMIN = "sk-admin-e0f2";

function config(simUrl: string, redisUrl: string): string {
  return [
    "model_groups:",
    "  - model_group: gpt-test",
    "    models:",
    endpointYaml(simUrl, { name: "east" }),
    "  - model_group: secret-group",
    "    models:",
    endpointYaml(simUrl, { name: "west" }),
    "general_settings:",
    "  cache: false",
    `  redis_url: ${redisUrl}`,
    `  admin_keys: [${ADMIN}]`,
    "  usage_stream: {enabled: true, stream_key: test-usage, max_len: 1000}",
    "keys:",
    `  - {name: team-a, key: ${KEY_A}, rpm: 5}`,
    `  - {name: team-b, key: ${KEY_B}, tokens_per_day: 100}`,
    `  - {name: team-c, key: ${KEY_C}, models: [gpt-test]}`,
    "prices:",
    "  upstream-model: {input: 1, output: 2}",
  ].join("\n") + "\n";
}

async function chat(proxy: RunningProxy, key: string, body: Record<string, unknown> = {}) {
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }], ...body }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
}

test({
  name:
    "two instances, one Redis, three keys: rpm, token budget, model access, counted streams, own responses",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn(t) {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({ quiet: true });
    const clock = minuteClock();
    await using a = await startProxy(config(sim.url, redis.url), { clock });
    await using b = await startProxy(config(sim.url, redis.url), { clock });

    await t.step(
      "rpm 5: the 6th request in the minute is a 429 with Retry-After, on either instance",
      async () => {
        for (let i = 0; i < 5; i++) {
          const answer = await chat(i % 2 === 0 ? a : b, KEY_A);
          assert.equal(answer.status, 200);
          assert.equal(answer.headers.get("x-ratelimit-limit-requests"), "5");
          assert.equal(answer.headers.get("x-ratelimit-remaining-requests"), String(4 - i));
          assert.match(answer.headers.get("x-ratelimit-reset-requests") ?? "", /^\d+s$/);
        }
        for (const proxy of [a, b]) {
          const refused = await chat(proxy, KEY_A);
          assert.equal(refused.status, 429);
          assert.equal(refused.json().error.code, "rate_limit_exceeded");
          assert.match(refused.json().error.message, /rpm \(5 requests per minute\)/);
          const expected = Math.ceil((Math.ceil(clock.now() / 60_000) * 60_000 - clock.now()) / 1000);
          const retryAfter = Number(refused.headers.get("retry-after"));
          assert.ok(Math.abs(retryAfter - expected) <= 1, `Retry-After ${retryAfter}, expected ${expected}`);
          assert.equal(refused.headers.get("x-ratelimit-remaining-requests"), "0");
        }
        assert.equal(sim.count("/chat/completions"), 5, "refused requests never reach the upstream");
      },
    );

    await t.step("tokens_per_day 100: refused once the reported usage reaches it", async () => {
      let used = 0;
      for (let i = 0; i < 20 && used < 100; i++) {
        const answer = await chat(i % 2 === 0 ? a : b, KEY_B);
        assert.equal(answer.status, 200, `request ${i} after ${used} tokens`);
        used += answer.json().usage.total_tokens;
      }
      assert.ok(used >= 100);
      for (const proxy of [a, b]) {
        const refused = await chat(proxy, KEY_B);
        assert.equal(refused.status, 429);
        assert.equal(refused.json().error.code, "insufficient_quota");
        assert.match(refused.json().error.message, /tokens_per_day/);
      }
    });

    await t.step("a group the key may not use answers exactly like an unknown one", async () => {
      const forbidden = await chat(a, KEY_C, { model: "secret-group" });
      const unknown = await chat(a, KEY_C, { model: "no-such-group" });
      assert.equal(forbidden.status, 404);
      assert.equal(forbidden.text.replace("secret-group", "X"), unknown.text.replace("no-such-group", "X"));
      assert.doesNotMatch(forbidden.json().error.message, /configured model groups:.*secret-group/);
      const models =
        await (await fetch(`${a.url}/v1/models`, { headers: { authorization: `Bearer ${KEY_C}` } }))
          .json();
      assert.deepEqual(models.data.map((model: { id: string }) => model.id), ["gpt-test"]);
    });

    await t.step(
      "a key's stream is counted; the client gets the stream it would get without the proxy",
      async () => {
        const body = {
          model: "upstream-model",
          messages: [{ role: "user", content: "count me" }],
          stream: true,
        };
        const direct = await (await fetch(`${sim.url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: "Bearer sk-test-east" },
          body: JSON.stringify(body),
        })).text();
        const proxied = await chat(b, KEY_C, { ...body, model: "gpt-test" });
        assert.equal(proxied.status, 200);
        const same = (text: string) =>
          text.replace(/"id":"[^"]*"/g, '"id":""').replace(/"created":\d+/g, '"created":0');
        assert.equal(same(proxied.text), same(direct));
        assert.ok(!proxied.text.includes('"usage"'));
        assert.deepEqual((sim.last?.body as { stream_options?: unknown }).stream_options, {
          include_usage: true,
        });
        await b.services.usage.settled();
        const today = new Date(clock.now()).toISOString().slice(0, 10);
        const usage = await fetch(`${a.url}/admin/usage?from=${today}&to=${today}&key=team-c`, {
          headers: { authorization: `Bearer ${ADMIN}` },
        });
        const rows = (await usage.json()).data;
        assert.equal(rows.length, 1);
        assert.equal(rows[0].key, "team-c");
        assert.equal(rows[0].model_group, "gpt-test");
        assert.equal(rows[0].endpoint, "east");
        assert.equal(rows[0].requests, 1);
        assert.ok(rows[0].output_tokens > 0 && rows[0].input_tokens > 0);
        const usd = (rows[0].input_tokens * 1 + rows[0].output_tokens * 2) / 1e6;
        assert.ok(Math.abs(rows[0].usd - usd) < 1e-9, `usd ${rows[0].usd}, expected ${usd}`);
        const metrics =
          await (await fetch(`${b.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } }))
            .text();
        assert.match(
          metrics,
          /llmproxy_key_requests_total\{key="team-c",group="gpt-test",endpoint="east"\} 1/,
        );
        assert.ok(!metrics.includes(KEY_C));
      },
    );

    await t.step("key B cannot read, continue or delete key A's response", async () => {
      const clientA = new OpenAI({ baseURL: `${a.url}/v1`, apiKey: KEY_C, maxRetries: 0 });
      const clientB = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: ADMIN, maxRetries: 0 });
      const created = await clientA.responses.create({ model: "gpt-test", input: "mine" });
      assert.equal((await clientA.responses.retrieve(created.id)).id, created.id);
      await assert.rejects(
        clientB.responses.retrieve(created.id),
        (error: unknown) => error instanceof OpenAI.NotFoundError,
      );
      await assert.rejects(
        clientB.responses.delete(created.id),
        (error: unknown) => error instanceof OpenAI.NotFoundError,
      );
      await assert.rejects(
        clientB.responses.create({ model: "gpt-test", input: "yours?", previous_response_id: created.id }),
        (error: unknown) =>
          error instanceof OpenAI.BadRequestError && error.code === "previous_response_not_found",
      );
      const next = await clientA.responses.create({
        model: "gpt-test",
        input: "more",
        previous_response_id: created.id,
      });
      assert.ok(next.id);
    });
  },
});

test("one instance: max_parallel, an expired key, a changed limit, a private cache", async () => {
  await using sim = await SimUpstream.start({ quiet: true, chunks: 4, chunkDelayMs: 150 });
  const yaml = [
    "model_groups:",
    "  - model_group: gpt-test",
    "    models:",
    endpointYaml(sim.url, { name: "east" }),
    "general_settings:",
    "  cache: true",
    `  admin_keys: [${ADMIN}]`,
    "keys:",
    `  - {name: team-a, key: ${KEY_A}, max_parallel: 1}`,
    `  - {name: team-b, key: ${KEY_B}, expires: 2001-01-01}`,
    `  - {name: team-c, key: ${KEY_C}, cache: private}`,
  ].join("\n") + "\n";
  await using proxy = await startProxy(yaml);

  // A stream holds team-a's one place until its last byte.
  const open = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY_A}` },
    body: JSON.stringify({ model: "gpt-test", stream: true, messages: [{ role: "user", content: "slow" }] }),
  });
  assert.equal(open.status, 200);
  const second = await chat(proxy, KEY_A, { messages: [{ role: "user", content: "meanwhile" }] });
  assert.equal(second.status, 429);
  assert.match(second.json().error.message, /max_parallel/);
  await open.text();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal((await chat(proxy, KEY_A, { messages: [{ role: "user", content: "after" }] })).status, 200);

  const expired = await chat(proxy, KEY_B);
  assert.equal(expired.status, 401);
  assert.match(expired.json().error.message, /expired on 2001-01-01/);

  // A private key neither reads nor writes the entries other keys share.
  const question = { messages: [{ role: "user", content: "cached?" }] };
  assert.equal((await chat(proxy, ADMIN, question)).headers.get("x-llmproxy-cache"), "MISS");
  await proxy.services.cache.settled();
  assert.equal((await chat(proxy, ADMIN, question)).headers.get("x-llmproxy-cache"), "HIT");
  assert.equal((await chat(proxy, KEY_C, question)).headers.get("x-llmproxy-cache"), "MISS");
  await proxy.services.cache.settled();
  assert.equal((await chat(proxy, KEY_C, question)).headers.get("x-llmproxy-cache"), "HIT", "its own entry");

  // A runtime key's limit changed through PATCH applies to its next request.
  const created = await fetch(`${proxy.url}/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}` },
    body: JSON.stringify({ name: "runtime", rpm: 100 }),
  });
  const { key } = await created.json();
  assert.equal((await chat(proxy, key)).headers.get("x-ratelimit-limit-requests"), "100");
  await (await fetch(`${proxy.url}/admin/keys/runtime`, {
    method: "PATCH",
    headers: { authorization: `Bearer ${ADMIN}` },
    body: JSON.stringify({ rpm: 1 }),
  })).body?.cancel();
  assert.equal((await chat(proxy, key)).status, 429);
});
