/**
 * The scenarios of the Python LLMProxy's own black-box suite, run against this proxy started from a config shaped
 * like that project's test config (tests/fixtures/python/test.yaml: only its upstream URLs and Redis port are
 * pointed at the simulated upstreams and a real redis-server). Official openai client and raw fetch.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const MODEL = "gpt-3.5-turbo";
const NO_CACHE = { "no-cache": true };

/** The SDK's typed params plus the proxy's `cache` field, as the Python SDK's `extra_body=` merges it in. */
function withCache<T extends object>(params: T, cache: Record<string, unknown>): T {
  return { ...params, cache } as T;
}

test({
  name: "the Python LLMProxy's live scenarios pass against its test config, on real Redis",
  ignore: !hasRedis,
  timeout: 30_000,
  fn: async (t) => {
    await using redis = await startRedis();
    await using one = await SimUpstream.start({ name: "one", quiet: true, latencyMs: 30 });
    await using two = await SimUpstream.start({ name: "two", quiet: true, latencyMs: 30 });
    await using fallback = await SimUpstream.start({ name: "fallback", quiet: true, latencyMs: 30 });
    const text = (await Deno.readTextFile(new URL("../fixtures/python/test.yaml", import.meta.url)))
      .replace("http://localhost:8001", one.url)
      .replace("http://localhost:8002", two.url)
      .replace("http://localhost:8003", fallback.url)
      .replace("redis_host: localhost", "redis_host: 127.0.0.1")
      .replace("redis_port: 6379", `redis_port: ${redis.port}`);
    await using proxy = await startProxy(text);
    assert.equal(proxy.services.store.kind, "redis");
    const client = new OpenAI({ baseURL: proxy.url, apiKey: "dummy-key", maxRetries: 0 });
    const raw = (path: string, body: unknown) =>
      fetch(`${proxy.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer dummy-key" },
        body: JSON.stringify(body),
      });

    await t.step("basic completion and streaming through the SDK, cache skipped", async () => {
      const reply = await client.chat.completions.create(
        withCache({ model: MODEL, messages: [{ role: "user", content: "Say hello" }] }, NO_CACHE),
      );
      assert.match(reply.choices[0].message.content ?? "", /Say hello/);
      const stream = await client.chat.completions.create(
        withCache(
          { model: MODEL, stream: true, messages: [{ role: "user", content: "Count" }] },
          NO_CACHE,
        ),
      );
      let chunks = 0;
      for await (const chunk of stream) chunks += chunk.choices[0]?.delta?.content ? 1 : 0;
      assert.ok(chunks > 1);
    });

    await t.step("streaming over raw HTTP with extra_body", async () => {
      const response = await raw("/chat/completions", {
        model: MODEL,
        stream: true,
        messages: [{ role: "user", content: "raw stream" }],
        extra_body: { cache: NO_CACHE },
      });
      assert.equal(response.status, 200);
      const lines = (await response.text()).split("\n").filter((line) => line.startsWith("data: "));
      assert.ok(lines.length > 2);
      assert.equal(lines.at(-1), "data: [DONE]");
    });

    await t.step("caching: the second identical request is a hit, faster", async () => {
      const ask = async () => {
        const { data, response } = await client.chat.completions
          .create({ model: MODEL, messages: [{ role: "user", content: "What is 2+2?" }] })
          .withResponse();
        await proxy.services.cache.settled();
        return { data, hit: response.headers.get("x-proxy-cache-hit") };
      };
      const upstreamCalls = () => one.count() + two.count() + fallback.count();
      const first = await ask();
      const callsAfterFirst = upstreamCalls();
      const second = await ask();
      assert.deepEqual([first.hit, second.hit], ["false", "true"]);
      assert.deepEqual(second.data, first.data);
      // Faster because no upstream (30 ms each here) is asked; the time itself is not asserted, as on a loaded
      // machine a hit once took as long as the miss (46 ms).
      assert.equal(upstreamCalls(), callsAfterFirst, "the hit reached no upstream");
    });

    await t.step("Responses API: plain, streamed, and a streamed answer cached with cache: {}", async () => {
      const plain = await client.responses.create(
        withCache({ model: MODEL, input: "hi" }, NO_CACHE),
      );
      assert.match(plain.output_text, /hi/);
      const read = async () => {
        const { data, response } = await client.responses
          .create(withCache({ model: MODEL, input: "name a colour", stream: true as const }, {}))
          .withResponse();
        const types: string[] = [];
        for await (const event of data) types.push(event.type);
        await proxy.services.cache.settled();
        return { types, hit: response.headers.get("x-proxy-cache-hit") };
      };
      const first = await read();
      const second = await read();
      assert.equal(first.types.at(-1), "response.completed");
      assert.deepEqual(second.types, first.types);
      assert.deepEqual([first.hit, second.hit], ["false", "true"]);
    });

    await t.step("an unknown model is an error naming it", async () => {
      await assert.rejects(
        client.chat.completions.create({
          model: "invalid-model-name",
          messages: [{ role: "user", content: "x" }],
        }),
        (error: Error) => /invalid-model-name/.test(error.message),
      );
    });

    await t.step(
      "load balancing: the weight-0 fallback stays idle; concurrent raw calls all succeed",
      async () => {
        const before = fallback.count();
        for (let i = 1; i <= 6; i++) {
          const reply = await client.chat.completions.create(
            withCache(
              { model: MODEL, messages: [{ role: "user", content: `Request ${i}` }] },
              NO_CACHE,
            ),
          );
          assert.match(reply.choices[0].message.content ?? "", new RegExp(`Request ${i}`));
        }
        const answers = await Promise.all(
          [1, 2, 3, 4, 5].map(async (i) => {
            const response = await raw("/chat/completions", {
              model: MODEL,
              messages: [{ role: "user", content: `Concurrent ${i}` }],
              extra_body: { cache: NO_CACHE },
            });
            return (await response.json()).choices[0].message.content as string;
          }),
        );
        answers.forEach((content, i) => assert.match(content, new RegExp(`Concurrent ${i + 1}`)));
        assert.equal(fallback.count(), before);
        assert.ok(one.count() > 0 && two.count() > 0, `${one.count()} / ${two.count()}`);
      },
    );

    await t.step("health and stats in the Python shapes", async () => {
      const health = await (await fetch(`${proxy.url}/health?format=python`)).json();
      assert.equal(health.status, "healthy");
      assert.equal(health.redis_connected, true);
      assert.deepEqual(health.model_groups, [MODEL]);
      const stats = await (await fetch(`${proxy.url}/stats?format=python`)).json();
      assert.equal(stats.total_endpoints, 3);
      for (
        const [group, endpoints] of Object.entries(stats.model_groups as Record<string, { id: string }[]>)
      ) {
        assert.equal(group, MODEL);
        assert.equal(endpoints.length, 3);
      }
    });
  },
});
