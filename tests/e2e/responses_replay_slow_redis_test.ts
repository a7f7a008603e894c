/**
 * Failover replay (the owner endpoint of a conversation is down, so its stored turns are replayed on the other
 * one) through an instance whose Redis is slow or hangs. The turns are read patiently, like the owner record: a
 * Redis that answers past its wait bound still gives the turns (the conversation is replayed), and one that cannot
 * answer is a 503 `store_unavailable` with `Retry-After`, not the 409 `conversation_unavailable` of a conversation
 * this proxy does not hold.
 */

import assert from "node:assert/strict";
import OpenAI, { APIError } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

async function twoEndpoints() {
  const east = await SimUpstream.start({ name: "east", quiet: true });
  const west = await SimUpstream.start({ name: "west", quiet: true }).catch(async (error) => {
    await east.close();
    throw error;
  });
  const sims: Record<string, SimUpstream> = { east, west };
  return {
    sims,
    yaml: (url: string) =>
      groupYaml(
        [endpointYaml(east.url, { name: "east" }), endpointYaml(west.url, { name: "west" })],
        [`redis_url: ${url}`],
      ),
    [Symbol.asyncDispose]: () => Promise.all([east.close(), west.close()]).then(() => {}),
  };
}

const client = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "k", maxRetries: 0 });

/** A two-turn conversation made through `url`; its owner endpoint and last response id. */
async function conversation(url: string): Promise<{ owner: string; last: string }> {
  const one = await client(url).responses.create({ model: "gpt-test", input: "my name is Ada" })
    .withResponse();
  const two = await client(url).responses.create({
    model: "gpt-test",
    previous_response_id: one.data.id,
    input: "and I like tea",
  });
  return { owner: one.response.headers.get("x-llmproxy-endpoint")!, last: two.id };
}

/** Sends a continuation of `last` through `url` and hangs Redis once the owner has it; the outcome. */
async function stalledContinuation(
  url: string,
  redis: { signal(signal: "SIGSTOP" | "SIGCONT"): Promise<void> },
  owner: SimUpstream,
  stallMs: number,
  last: string,
): Promise<{ response?: Response; error?: unknown }> {
  const before = owner.requests.length;
  const pending = client(url).responses.create({
    model: "gpt-test",
    previous_response_id: last,
    input: "what is my name?",
  }).withResponse().then(({ response }) => ({ response }), (error) => ({ error }));
  try {
    // The owner is found while Redis answers; Redis hangs while the owner takes its time to fail.
    for (let i = 0; i < 200 && owner.requests.length === before; i++) await delay(10);
    assert.equal(owner.requests.length, before + 1, "the continuation reached its owner");
    await redis.signal("SIGSTOP");
    await delay(stallMs);
  } finally {
    await redis.signal("SIGCONT");
  }
  return await pending;
}

test({
  name:
    "Responses failover while Redis stalls ~600 ms (past a plain read's bound): the stored turns are replayed",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis();
    await using setup = await twoEndpoints();
    await using maker = await startProxy(setup.yaml(redis.url));
    await using proxy = await startProxy(setup.yaml(redis.url));
    const { owner, last } = await conversation(maker.url);
    setup.sims[owner].latencyMs = 800;
    setup.sims[owner].always({ kind: "status", status: 503 });
    const rescuer = owner === "east" ? "west" : "east";

    // The turns are asked for ~800 ms into a 1.4 s stall: Redis answers ~600 ms later, within its 1 s timeout.
    const { response, error } = await stalledContinuation(proxy.url, redis, setup.sims[owner], 1400, last);
    assert.equal(error, undefined);
    assert.equal(response!.headers.get("x-llmproxy-conversation"), "replayed");
    assert.equal(response!.headers.get("x-llmproxy-endpoint"), rescuer);
    const transcript = JSON.stringify((setup.sims[rescuer].last!.body as { input: unknown }).input);
    assert.match(transcript, /my name is Ada/);
    assert.match(transcript, /and I like tea/);
  },
});

test({
  name: "Responses failover while Redis hangs: a 503 store_unavailable, not a 409 conversation_unavailable",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis();
    await using setup = await twoEndpoints();
    await using maker = await startProxy(setup.yaml(redis.url));
    await using proxy = await startProxy(setup.yaml(redis.url));
    const { owner, last } = await conversation(maker.url);
    setup.sims[owner].latencyMs = 1000;
    setup.sims[owner].always({ kind: "status", status: 503 });
    // Hung until well after the turns are asked for (~1 s in) and a patient read has given up (2 s later at most).
    const { error } = await stalledContinuation(proxy.url, redis, setup.sims[owner], 4000, last);
    assert.ok(error instanceof APIError, `expected an API error, got ${error}`);
    assert.equal(error.status, 503, error.message);
    assert.equal(error.code, "store_unavailable");
    assert.equal(error.headers?.get("retry-after"), "1");
  },
});
