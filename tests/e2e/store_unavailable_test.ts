/**
 * While Redis cannot answer, a lookup that decides whether an object exists for the caller (a file's or batch's
 * holder and owner, a response's owner and endpoint) says so: 503 `store_unavailable` with `Retry-After`, on every
 * route that makes one, never the 404 or 400 of an object that does not exist. What this instance recorded itself
 * during the outage is still served, and a real 404 stays a 404. The real proxy, real Redis (stopped, or hung with
 * SIGSTOP), two simulated endpoints, the openai client.
 */

import assert from "node:assert/strict";
import OpenAI, { APIError, toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const KEYS = "keys:\n  - {name: team-a, key: team-a-key}\n";

async function unavailable(what: string, call: Promise<unknown>): Promise<void> {
  const error = await call.then(() => undefined, (e) => e);
  assert.ok(error instanceof APIError, `${what}: expected an API error, got ${error}`);
  assert.equal(error.status, 503, `${what}: ${error.message}`);
  assert.equal(error.code, "store_unavailable", what);
  assert.equal(error.type, "service_unavailable", what);
  assert.equal(error.headers?.get("retry-after"), "1", what);
}

async function notFound(what: string, call: Promise<unknown>, status = 404): Promise<void> {
  const error = await call.then(() => undefined, (e) => e);
  assert.ok(error instanceof APIError, `${what}: expected an API error, got ${error}`);
  assert.equal(error.status, status, `${what}: ${error.message}`);
}

const upload = async (client: OpenAI, purpose: "user_data" | "batch" = "user_data") =>
  client.files.create({
    file: await toFile(
      new TextEncoder().encode(
        purpose === "batch"
          ? '{"custom_id":"1","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}\n'
          : "%PDF-1.4",
      ),
      purpose === "batch" ? "in.jsonl" : "doc.pdf",
    ),
    purpose,
  });

test({
  name:
    "Redis away: every file, batch and response lookup of a client key is a 503 store_unavailable, not a 404/400",
  ignore: !hasRedis,
  timeout: 60_000,
  async fn() {
    await using redis = await startRedis();
    await using east = await SimUpstream.start({ name: "east", quiet: true });
    await using west = await SimUpstream.start({ name: "west", quiet: true });
    const yaml = groupYaml(
      [endpointYaml(east.url, { name: "east" }), endpointYaml(west.url, { name: "west" })],
      [`redis_url: ${redis.url}`],
    ) + KEYS;
    // The objects are made through another instance: on a loaded machine a write may also land in the maker's
    // local state, which this test is not about.
    await using maker = await startProxy(yaml);
    await using proxy = await startProxy(yaml);
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "team-a-key", maxRetries: 0 });
    const makes = new OpenAI({ baseURL: `${maker.url}/v1`, apiKey: "team-a-key", maxRetries: 0 });

    const file = await upload(makes);
    const input = await upload(makes, "batch");
    const batch = await makes.batches.create({
      input_file_id: input.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const response = await makes.responses.create({ model: "gpt-test", input: "remember 7" });
    // With Redis up, what does not exist is a 404 (the truth, and the control for what follows).
    await notFound("unknown file, Redis up", client.files.retrieve("file-none"));

    await redis.stop();
    for (let i = 0; i < 100 && proxy.services.store.status() === "ok"; i++) await delay(20);
    assert.equal(proxy.services.store.status(), "degraded");

    await unavailable("GET /files/{id}", client.files.retrieve(file.id));
    await unavailable("GET /files/{id}/content", client.files.content(file.id));
    await unavailable("DELETE /files/{id}", client.files.delete(file.id));
    await unavailable("GET /files", client.files.list().then((page) => page.data));
    await unavailable("GET /batches/{id}", client.batches.retrieve(batch.id));
    await unavailable("POST /batches/{id}/cancel", client.batches.cancel(batch.id));
    await unavailable(
      "POST /batches (input_file_id)",
      client.batches.create({
        input_file_id: input.id,
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
      }),
    );
    await unavailable(
      "chat naming a file",
      client.chat.completions.create({
        model: "gpt-test",
        messages: [{ role: "user", content: [{ type: "file", file: { file_id: file.id } }] }],
      }),
    );
    await unavailable("GET /responses/{id}", client.responses.retrieve(response.id));
    await unavailable("GET /responses/{id}/input_items", client.responses.inputItems.list(response.id));
    await unavailable("POST /responses/{id}/cancel", client.responses.cancel(response.id));
    await unavailable("DELETE /responses/{id}", client.responses.delete(response.id));
    await unavailable(
      "POST /responses (previous_response_id)",
      client.responses.create({ model: "gpt-test", previous_response_id: response.id, input: "and?" }),
    );

    // What this instance made during the outage, it holds itself: served, and continued.
    const local = await upload(client);
    assert.equal((await client.files.retrieve(local.id)).id, local.id);
    const opened = await client.responses.create({ model: "gpt-test", input: "remember 8" });
    const next = await client.responses.create({
      model: "gpt-test",
      previous_response_id: opened.id,
      input: "?",
    });
    assert.equal(next.status, "completed");
  },
});

test({
  name:
    "Redis hung (SIGSTOP): a key's file lookup waits for it, then answers 503 store_unavailable, not a 404",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({ name: "east", quiet: true });
    const yaml = groupYaml([endpointYaml(sim.url, { name: "east" })], [`redis_url: ${redis.url}`]) + KEYS;
    await using maker = await startProxy(yaml);
    await using proxy = await startProxy(yaml);
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "team-a-key", maxRetries: 0 });
    const file = await upload(
      new OpenAI({ baseURL: `${maker.url}/v1`, apiKey: "team-a-key", maxRetries: 0 }),
    );
    await redis.signal("SIGSTOP");
    try {
      const started = performance.now();
      await unavailable("GET /files/{id}, Redis hung", client.files.retrieve(file.id));
      // It waits for the store (its command timeout, 1 s by default), not merely its 250 ms bound.
      assert.ok(performance.now() - started >= 900, "waited for the hung store before saying so");
    } finally {
      await redis.signal("SIGCONT");
    }
    let found: string | undefined;
    for (let i = 0; i < 20 && found === undefined; i++) {
      found = await client.files.retrieve(file.id).then((f) => f.id, () => delay(100).then(() => undefined));
    }
    assert.equal(found, file.id);
  },
});
