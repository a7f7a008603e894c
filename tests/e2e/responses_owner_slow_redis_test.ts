/**
 * A key continues its own response through another instance whose Redis answers later than its 250 ms wait bound
 * (a loaded machine, a Redis fork): a slow answer is not an outage, so the owner record is waited for, and the
 * conversation goes on instead of a 400 `previous_response_not_found` from that instance's empty local state.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { slowLink } from "../_support/slow_link.ts";
import { test } from "../_support/test.ts";

test({
  name:
    "Responses: a key's own response continued through an instance whose Redis answers past its wait bound",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis();
    await using link = slowLink(redis.port, 400);
    await using sim = await SimUpstream.start({ name: "east", quiet: true });
    const yaml = (url: string) =>
      groupYaml([endpointYaml(sim.url, { name: "east" })], [`redis_url: ${url}`]) +
      "keys:\n  - {name: team-a, key: team-a-key}\n";
    await using first = await startProxy(yaml(redis.url));
    await using second = await startProxy(yaml(`redis://127.0.0.1:${link.port}`));
    const client = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "team-a-key", maxRetries: 0 });
    const opening = await client(first.url).responses.create({ model: "gpt-test", input: "remember 7" });
    const next = await client(second.url).responses.create({
      model: "gpt-test",
      previous_response_id: opening.id,
      input: "what was it?",
    });
    assert.equal(next.status, "completed");
  },
});
