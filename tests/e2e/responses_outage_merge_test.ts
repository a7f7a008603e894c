/**
 * Responses made through one instance while Redis was down were recorded in that instance's memory alone: once
 * Redis was back, a continuation through another instance (or through the same one: it asks Redis first) found no
 * owner and went by weight, to an endpoint that did not hold the response, half the time in a group of two. The
 * records made during the outage are now written to Redis once it answers, so every continuation reaches its
 * owner.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const MADE = 8;

test({
  name: "Responses made while Redis was down are continued on their own endpoint through any instance after",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis();
    await using east = await SimUpstream.start({ name: "east", quiet: true });
    await using west = await SimUpstream.start({ name: "west", quiet: true });
    const yaml = groupYaml(
      [endpointYaml(east.url, { name: "east" }), endpointYaml(west.url, { name: "west" })],
      [`redis_url: ${redis.url}`],
    );
    await using maker = await startProxy(yaml, { logLevel: "error" });
    await using other = await startProxy(yaml, { logLevel: "error" });
    const client = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "k", maxRetries: 0 });

    await redis.stop();
    const made: { id: string; owner: string }[] = [];
    try {
      for (let i = 0; i < MADE; i++) {
        const { data, response } = await client(maker.url).responses.create({
          model: "gpt-test",
          input: `made during the outage ${i}`,
        }).withResponse();
        made.push({ id: data.id, owner: response.headers.get("x-llmproxy-endpoint")! });
      }
    } finally {
      await redis.start();
    }
    assert.ok(new Set(made.map(({ owner }) => owner)).size === 2, "both endpoints made some");
    // Back: the maker's store says ok once a call reached Redis (which sends what it owes).
    const since = Date.now();
    while ((await (await fetch(`${maker.url}/health`)).json()).store.status !== "ok") {
      assert.ok(Date.now() - since < 10_000, "the store never said ok again");
      await delay(50);
    }
    await delay(300);
    for (const [i, { id, owner }] of made.entries()) {
      const via = i % 2 === 0 ? other : maker;
      const { response } = await client(via.url).responses.create({
        model: "gpt-test",
        previous_response_id: id,
        input: "go on",
      }).withResponse();
      assert.equal(response.headers.get("x-llmproxy-endpoint"), owner, `continuation ${i} of ${id}`);
    }
  },
});
