/**
 * Responses API conversations: affinity to the owning endpoint, encrypted reasoning routing, failover replay, and
 * the id routes. Two simulated endpoints each only know their own response ids and encrypted blobs.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

async function twoEndpoints(settings: string[] = []) {
  const east = await SimUpstream.start({ name: "east", quiet: true });
  const west = await SimUpstream.start({ name: "west", quiet: true });
  const proxy = await startProxy(groupYaml([
    endpointYaml(east.url, { name: "east", weight: 1 }),
    endpointYaml(west.url, { name: "west", weight: 1 }),
  ], settings));
  const sims: Record<string, SimUpstream> = { east, west };
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "x", maxRetries: 0 });
  return {
    sims,
    proxy,
    client,
    other: (id: string) => (id === "east" ? "west" : "east"),
    [Symbol.asyncDispose]: async () => {
      await proxy.close();
      await east.close();
      await west.close();
    },
  };
}

test("a 3-turn conversation stays on its owner, and survives the owner going down after turn 2", async () => {
  await using setup = await twoEndpoints();
  const { client, sims, other } = setup;

  const one = await client.responses.create({ model: "gpt-test", input: "my name is Ada" }).withResponse();
  const owner = one.response.headers.get("x-llmproxy-endpoint")!;
  for (let i = 0; i < 4; i++) {
    // Whatever the weights say, every follow-up goes to the owner (the other sim would answer 400).
    const follow = await client.responses
      .create({ model: "gpt-test", input: `follow-up ${i}`, previous_response_id: one.data.id })
      .withResponse();
    assert.equal(follow.response.headers.get("x-llmproxy-endpoint"), owner);
  }
  const two = await client.responses
    .create({ model: "gpt-test", input: "what is my name?", previous_response_id: one.data.id })
    .withResponse();
  assert.equal(two.response.headers.get("x-llmproxy-endpoint"), owner);

  // The owner goes down.
  sims[owner].always({ kind: "status", status: 503 });
  const three = await client.responses
    .create({ model: "gpt-test", input: "turn three", previous_response_id: two.data.id })
    .withResponse();
  const rescuer = other(owner);
  assert.equal(three.response.headers.get("x-llmproxy-endpoint"), rescuer);
  assert.equal(three.response.headers.get("x-llmproxy-conversation"), "replayed");
  assert.match(three.data.output_text, /echo: turn three/);
  const sent = sims[rescuer].last!.body as { input: { role?: string; content: unknown }[] };
  assert.equal("previous_response_id" in sent, false);
  const transcript = JSON.stringify(sent.input);
  assert.match(transcript, /my name is Ada/);
  assert.match(transcript, /what is my name\?/);
  assert.match(transcript, /turn three/);
  assert.ok(
    sent.input.some((item) => item.role === "assistant"),
    "earlier answers are replayed as assistant items",
  );

  // The chain goes on from the new response, now owned by the rescuer.
  const four = await client.responses
    .create({ model: "gpt-test", input: "turn four", previous_response_id: three.data.id })
    .withResponse();
  assert.equal(four.response.headers.get("x-llmproxy-endpoint"), rescuer);
  assert.equal(four.response.headers.get("x-llmproxy-conversation"), null);
});

test("streamed turns are routed to their owner and recorded for affinity", async () => {
  await using setup = await twoEndpoints();
  const { client } = setup;
  const first = client.responses.stream({ model: "gpt-test", input: "stream one" });
  const firstResponse = await first.finalResponse();
  const owner = firstResponse.id.includes("east") ? "east" : "west";
  for (let i = 0; i < 3; i++) {
    const { data: stream, response } = await client.responses
      .create({ model: "gpt-test", input: `next ${i}`, previous_response_id: firstResponse.id, stream: true })
      .withResponse();
    let text = "";
    for await (const event of stream) if (event.type === "response.output_text.delta") text += event.delta;
    assert.match(text, new RegExp(`echo: next ${i}`));
    assert.equal(response.headers.get("x-llmproxy-endpoint"), owner);
  }
});

test("encrypted reasoning items go to the endpoint that produced them; mixed owners get a 409", async () => {
  await using setup = await twoEndpoints();
  const { client } = setup;
  const make = () =>
    client.responses.create({
      model: "gpt-test",
      input: "think",
      store: false,
      include: ["reasoning.encrypted_content"],
    }).withResponse();
  const first = await make();
  const reasoning = first.data.output.filter((item) => item.type === "reasoning");
  assert.ok(reasoning.length > 0 && reasoning[0].encrypted_content, "the sim produced encrypted reasoning");
  const owner = first.response.headers.get("x-llmproxy-endpoint")!;
  for (let i = 0; i < 4; i++) {
    const next = await client.responses.create({
      model: "gpt-test",
      store: false,
      input: [...first.data.output, {
        role: "user",
        content: `again ${i}`,
      }] as OpenAI.Responses.ResponseInput,
    }).withResponse();
    assert.equal(next.response.headers.get("x-llmproxy-endpoint"), owner);
  }

  let second = await make();
  while (second.response.headers.get("x-llmproxy-endpoint") === owner) second = await make();
  const mixed = [...first.data.output, ...second.data.output, { role: "user", content: "both" }];
  await assert.rejects(
    client.responses.create({
      model: "gpt-test",
      store: false,
      input: mixed as OpenAI.Responses.ResponseInput,
    }),
    (error: unknown) => error instanceof OpenAI.APIError && error.status === 409,
  );
});

test("responses_failover: fail gives a 409 conversation_unavailable when the owner is down", async () => {
  await using setup = await twoEndpoints(["responses_failover: fail"]);
  const { client, sims } = setup;
  const one = await client.responses.create({ model: "gpt-test", input: "hello" }).withResponse();
  const owner = one.response.headers.get("x-llmproxy-endpoint")!;
  sims[owner].always({ kind: "status", status: 500 });
  await assert.rejects(
    client.responses.create({ model: "gpt-test", input: "more", previous_response_id: one.data.id }),
    (error: unknown) =>
      error instanceof OpenAI.APIError && error.status === 409 && error.code === "conversation_unavailable",
  );
});

test("no conversation copy held: a clear 409, not a 500; unknown ids are routed by weight", async () => {
  await using setup = await twoEndpoints();
  const { client, sims, proxy } = setup;
  const one = await client.responses.create({ model: "gpt-test", input: "hello" }).withResponse();
  const owner = one.response.headers.get("x-llmproxy-endpoint")!;
  await proxy.services.store.delete(`turn:${one.data.id}`);
  sims[owner].always({ kind: "status", status: 500 });
  await assert.rejects(
    client.responses.create({ model: "gpt-test", input: "more", previous_response_id: one.data.id }),
    (error: unknown) =>
      error instanceof OpenAI.APIError && error.status === 409 &&
      /does not hold that conversation/.test(error.message),
  );
  sims[owner].always({ kind: "ok" });
  // An id the proxy never saw: routed as usual, the upstream's 400 passes through in the OpenAI envelope.
  await assert.rejects(
    client.responses.create({ model: "gpt-test", input: "x", previous_response_id: "resp_unknown" }),
    (error: unknown) =>
      error instanceof OpenAI.BadRequestError && error.code === "previous_response_not_found",
  );
});

test("GET, DELETE and input_items of a response go to its owner; unknown ids are a 404", async () => {
  await using setup = await twoEndpoints();
  const { client, sims } = setup;
  const created = await client.responses.create({ model: "gpt-test", input: "keep me" }).withResponse();
  const owner = created.response.headers.get("x-llmproxy-endpoint")!;
  for (let i = 0; i < 3; i++) {
    const fetched = await client.responses.retrieve(created.data.id);
    assert.equal(fetched.id, created.data.id);
  }
  const items = await client.responses.inputItems.list(created.data.id);
  assert.match(JSON.stringify(items.data), /keep me/);
  await client.responses.delete(created.data.id);
  assert.ok(sims[owner].requests.some((request) => request.method === "DELETE"));
  await assert.rejects(
    client.responses.retrieve(created.data.id),
    (error: unknown) => error instanceof OpenAI.NotFoundError,
  );
  await assert.rejects(
    client.responses.retrieve("resp_never_seen"),
    (error: unknown) => error instanceof OpenAI.NotFoundError && error.code === "response_not_found",
  );
});

test("a cached Responses answer refreshes its owner mapping, so the next turn still reaches the owner", async () => {
  await using setup = await twoEndpoints(["cache: true"]);
  const { client, proxy } = setup;
  const first = await client.responses.create({ model: "gpt-test", input: "cache me" }).withResponse();
  const owner = first.response.headers.get("x-llmproxy-endpoint")!;
  // The owner mapping expires (affinity lives shorter than cache entries) ...
  await proxy.services.store.delete(`aff:${first.data.id}`);
  // ... and a cache hit hands the same response id out again.
  const hit = await client.responses.create({ model: "gpt-test", input: "cache me" }).withResponse();
  assert.equal(hit.response.headers.get("x-llmproxy-cache"), "HIT");
  assert.equal(hit.data.id, first.data.id);
  for (let i = 0; i < 3; i++) {
    const next = await client.responses
      .create({ model: "gpt-test", input: `after the hit ${i}`, previous_response_id: hit.data.id })
      .withResponse();
    assert.equal(next.response.headers.get("x-llmproxy-endpoint"), owner);
  }
});

test("a background response is cancelled on its owner, polled there, and never served from the cache", async () => {
  await using setup = await twoEndpoints(["cache: true"]);
  const { client, sims, other } = setup;
  const body = { model: "gpt-test", input: "work on this in the background", background: true };
  const created = await client.responses.create(body).withResponse();
  assert.equal(created.data.status, "queued");
  const owner = created.response.headers.get("x-llmproxy-endpoint")!;

  const cancelled = await client.responses.cancel(created.data.id);
  assert.equal(cancelled.status, "cancelled");
  assert.equal(sims[owner].count("/cancel"), 1);
  assert.equal(sims[other(owner)].count("/cancel"), 0);
  assert.equal((await client.responses.retrieve(created.data.id)).status, "cancelled");

  // The same request again starts a new job: a queued snapshot is not an answer to hand out twice.
  const again = await client.responses.create(body).withResponse();
  assert.notEqual(again.data.id, created.data.id);
  assert.equal(again.response.headers.get("x-llmproxy-cache"), "MISS");
  // Once finished, polling through the proxy gets the result from the owner.
  const finished = await client.responses.retrieve(again.data.id);
  assert.equal(finished.status, "completed");
  assert.match(finished.output_text, /background/);

  await assert.rejects(
    client.responses.cancel("resp_never_seen"),
    (error: unknown) => error instanceof OpenAI.NotFoundError && error.code === "response_not_found",
  );
});
