/**
 * A Responses conversation replayed on another endpoint (its owner down) rebuilds its whole chain of turns from
 * the store. The chain was read one link at a time: a 100-turn conversation cost 100 Redis round trips before the
 * answer (a Redis 10 ms away: over a second). Each response now keeps the ids of its earlier turns, so the chain is
 * read in two round trips. Measured through a TCP relay that delays every command 10 ms.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { slowLink } from "../_support/slow_link.ts";
import { test } from "../_support/test.ts";

const TURNS = 100;
const DELAY_MS = 10;

test({
  name:
    `Responses failover replays a ${TURNS}-turn conversation in a few Redis round trips, not one per turn`,
  ignore: !hasRedis,
  timeout: 60_000,
  async fn() {
    await using redis = await startRedis();
    await using east = await SimUpstream.start({ name: "east", quiet: true });
    await using west = await SimUpstream.start({ name: "west", quiet: true });
    const sims: Record<string, SimUpstream> = { east, west };
    const yaml = (url: string) =>
      groupYaml(
        [endpointYaml(east.url, { name: "east" }), endpointYaml(west.url, { name: "west" })],
        [`redis_url: ${url}`],
      );
    await using link = slowLink(redis.port, DELAY_MS);
    // The conversation is made next to Redis; it is continued through an instance 10 ms away from it.
    await using maker = await startProxy(yaml(redis.url));
    await using far = await startProxy(yaml(`redis://127.0.0.1:${link.port}`));
    const client = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "k", maxRetries: 0 });
    const first = await client(maker.url).responses.create({ model: "gpt-test", input: "turn 0" })
      .withResponse();
    const owner = first.response.headers.get("x-llmproxy-endpoint")!;
    let last = first.data.id;
    for (let i = 1; i < TURNS; i++) {
      last = (await client(maker.url).responses.create({
        model: "gpt-test",
        previous_response_id: last,
        input: `turn ${i}`,
      })).id;
    }
    const rescuer = owner === "east" ? "west" : "east";
    sims[owner].always({ kind: "status", status: 503 });
    // Once as a warm-up (connections, the endpoint's first failure), then timed.
    const continueIt = async (input: string) => {
      const started = performance.now();
      const { response } = await client(far.url).responses.create({
        model: "gpt-test",
        previous_response_id: last,
        input,
      }).withResponse();
      const ms = performance.now() - started;
      assert.equal(response.headers.get("x-llmproxy-conversation"), "replayed");
      assert.equal(response.headers.get("x-llmproxy-endpoint"), rescuer);
      const transcript = JSON.stringify((sims[rescuer].last!.body as { input: unknown }).input);
      for (const turn of [0, 1, TURNS / 2, TURNS - 1]) assert.match(transcript, new RegExp(`"turn ${turn}"`));
      return ms;
    };
    await continueIt("warm up");
    const times = [];
    for (let i = 0; i < 3; i++) times.push(await continueIt(`again ${i}`));
    const best = Math.min(...times);
    console.log(
      `replay of ${TURNS} turns with Redis ${DELAY_MS} ms away: ${times.map(Math.round).join(", ")} ms`,
    );
    // One link at a time costs TURNS round trips (>= 1 s here); a few round trips and the replay itself take far less.
    assert.ok(best < (TURNS * DELAY_MS) / 2, `replay took ${Math.round(best)} ms at best`);
  },
});
