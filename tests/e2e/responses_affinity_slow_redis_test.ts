/**
 * A conversation continued through another instance whose Redis is slow or away, in a group of two endpoints:
 * the record of which endpoint holds the response (`aff:`) is waited for like its owner's, so the continuation
 * goes to that endpoint instead of being balanced to the other one (whose 400 `previous_response_not_found` the
 * client would get); when Redis cannot answer at all, the client is told so (503 `store_unavailable`).
 */

import assert from "node:assert/strict";
import OpenAI, { APIError } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { slowLink } from "../_support/slow_link.ts";
import { test } from "../_support/test.ts";

async function twoEndpoints() {
  const east = await SimUpstream.start({ name: "east", quiet: true });
  const west = await SimUpstream.start({ name: "west", quiet: true }).catch(async (error) => {
    await east.close();
    throw error;
  });
  return {
    yaml: (url: string) =>
      groupYaml(
        [endpointYaml(east.url, { name: "east" }), endpointYaml(west.url, { name: "west" })],
        [`redis_url: ${url}`],
      ),
    [Symbol.asyncDispose]: () => Promise.all([east.close(), west.close()]).then(() => {}),
  };
}

const client = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "k", maxRetries: 0 });

test({
  name:
    "Responses, two endpoints: continuations through an instance whose Redis answers past its wait bound reach their endpoint",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis();
    await using link = slowLink(redis.port, 400);
    await using sims = await twoEndpoints();
    await using first = await startProxy(sims.yaml(redis.url));
    await using second = await startProxy(sims.yaml(`redis://127.0.0.1:${link.port}`));
    const opening = await client(first.url).responses.create({ model: "gpt-test", input: "remember 7" });
    // Balanced by weight, two turns in a row would reach both endpoints: one of them does not hold the response.
    for (let turn = 0; turn < 3; turn++) {
      const next = await client(second.url).responses.create({
        model: "gpt-test",
        previous_response_id: opening.id,
        input: `turn ${turn}`,
      });
      assert.equal(next.status, "completed");
    }
  },
});

test({
  name:
    "Responses, two endpoints, Redis hung: a continuation this instance cannot place is a 503 store_unavailable",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis();
    await using sims = await twoEndpoints();
    // Made through another instance: on a loaded machine a write may also land in the maker's local state.
    await using maker = await startProxy(sims.yaml(redis.url));
    await using proxy = await startProxy(sims.yaml(redis.url));
    const opening = await client(maker.url).responses.create({ model: "gpt-test", input: "remember 7" });
    await redis.signal("SIGSTOP");
    let error: unknown;
    try {
      error = await client(proxy.url).responses.create({
        model: "gpt-test",
        previous_response_id: opening.id,
        input: "and?",
      }).then(() => undefined, (e) => e);
    } finally {
      await redis.signal("SIGCONT");
    }
    assert.ok(error instanceof APIError, `expected an API error, got ${error}`);
    assert.equal(error.status, 503, error.message);
    assert.equal(error.code, "store_unavailable");
    assert.equal(error.headers?.get("retry-after"), "1");
  },
});
