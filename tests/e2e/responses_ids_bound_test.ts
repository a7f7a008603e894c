/**
 * A proxy on the memory store keeps, for each response, its endpoint (`aff:`), the key that created it (`owner:`)
 * and its turn, and each encrypted reasoning blob's endpoint (`enc:`), for `response_affinity_ttl` (six hours).
 * A client creating responses fast grew the first three without a count bound. They are bounded by
 * `response_affinity_max_entries` (least recently used out first), and a response whose owner record went is
 * unknown to every key: the proxy answers 400 `previous_response_not_found` (404 on `GET`) itself, as for an
 * expired id, instead of letting any key continue it upstream. A kept id still works for its key and only its key.
 * The same bound holds the local state a Redis proxy serves from while Redis is away; there an id no longer held
 * locally may still be in Redis, so the answer is 503 `store_unavailable` (cannot tell now), not "not found".
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const A = "sk-team-a-ids-5e1";
const B = "sk-team-b-ids-9c0";
const BOUND = 40;

for (const store of ["memory", "redis stopped"] as const) {
  test({
    name:
      `${store}: Responses ids, owners and reasoning items are bounded; an evicted id is unknown to every key`,
    ignore: store !== "memory" && !hasRedis,
    timeout: 60_000,
    fn: () => bounded(store),
  });
}

async function bounded(store: "memory" | "redis stopped"): Promise<void> {
  {
    await using redis = store === "memory" ? undefined : await startRedis();
    // One endpoint: a follow-up routed by weight reaches the sim that still holds the response, so only the
    // proxy's own answer keeps another key out.
    await using sim = await SimUpstream.start({ name: "east", quiet: true });
    const yaml = groupYaml([endpointYaml(sim.url, { name: "east" })], [
      `response_affinity_max_entries: ${BOUND}`,
      ...(redis ? [`redis_url: ${redis.url}`] : []),
    ]) + `keys:\n  - {name: team-a, key: ${A}}\n  - {name: team-b, key: ${B}}\n`;
    await using proxy = await startProxy(yaml, { logLevel: "error" });
    // Every record below lives in the local state only.
    await redis?.stop();
    const clientA = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: A, maxRetries: 0 });
    const clientB = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: B, maxRetries: 0 });
    const create = async (key: string, body: Record<string, unknown>) => {
      const response = await fetch(`${proxy.url}/v1/responses`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-test", ...body }),
      });
      return { status: response.status, body: await response.json() };
    };

    const first = await clientA.responses.create({ model: "gpt-test", input: "the first" });
    // Many more, by raw fetch, the SDK and streamed, with encrypted reasoning items.
    for (let i = 0; i < 3 * BOUND; i++) {
      const input = `turn ${i}`;
      if (i % 3 === 0) {
        const made = await create(A, { input, store: false, include: ["reasoning.encrypted_content"] });
        assert.equal(made.status, 200, JSON.stringify(made.body));
      } else if (i % 3 === 1) {
        await clientA.responses.create({ model: "gpt-test", input });
      } else {
        const stream = clientA.responses.stream({ model: "gpt-test", input });
        for await (const _event of stream) { /* read to the end */ }
      }
    }
    const last = await clientA.responses.create({ model: "gpt-test", input: "the last" });

    const held = proxy.services.store;
    if (redis) assert.equal(held.status(), "degraded");
    for (const prefix of ["aff:", "owner:", "turn:", "enc:"]) {
      const usage = await held.usage!(prefix);
      assert.ok(usage.entries <= BOUND, `${prefix} entries held: ${usage.entries}, bound ${BOUND}`);
      assert.ok(usage.entries >= BOUND / 2, `${prefix} the most recent are kept: ${usage.entries}`);
      assert.ok(usage.bytes <= BOUND * 256 || prefix === "turn:", `${prefix} bytes held: ${usage.bytes}`);
    }

    // The first id went: the same answer for every key, from the proxy (the sim still holds the response). With
    // Redis away, Redis may still hold it: the proxy cannot tell (503), and says so rather than "not found".
    const gone = (status: number) => (error: unknown) =>
      error instanceof OpenAI.APIError && error.status === (redis ? 503 : status) &&
      error.code ===
        (redis ? "store_unavailable" : status === 400 ? "previous_response_not_found" : error.code);
    for (const client of [clientA, clientB]) {
      await assert.rejects(
        client.responses.create({ model: "gpt-test", input: "more", previous_response_id: first.id }),
        gone(400),
      );
      await assert.rejects(client.responses.retrieve(first.id), gone(404));
    }
    for (const key of [A, B]) {
      const refused = await create(key, { input: "more", previous_response_id: first.id });
      assert.equal(refused.status, redis ? 503 : 400, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, redis ? "store_unavailable" : "previous_response_not_found");
    }

    // The last id is kept: its key continues it, another key is refused as before.
    const next = await clientA.responses.create({
      model: "gpt-test",
      input: "and then?",
      previous_response_id: last.id,
    });
    assert.ok(next.id);
    assert.equal((await clientA.responses.retrieve(last.id)).id, last.id);
    const other = await create(B, { input: "mine now?", previous_response_id: last.id });
    assert.equal(other.status, 400, JSON.stringify(other.body));
    assert.equal(other.body.error.code, "previous_response_not_found");
    await assert.rejects(
      clientB.responses.retrieve(last.id),
      (error: unknown) => error instanceof OpenAI.NotFoundError,
    );
  }
}
