/** Bad client input gets a clear OpenAI-shaped error and never reaches an upstream. */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

async function post(url: string, body: BodyInit, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  const json = await response.json();
  return { status: response.status, error: json.error, headers: response.headers };
}

test("bad input: invalid JSON, non-objects, bad model, bad stream, too large, unknown route", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)], ["max_body_bytes: 2048"]));
  const chat = `${proxy.url}/v1/chat/completions`;

  const cases: [BodyInit, number, string][] = [
    ["{not json", 400, "invalid_json"],
    ["", 400, "invalid_json"],
    ["[1,2]", 400, "invalid_json"],
    ['"text"', 400, "invalid_json"],
    ["null", 400, "invalid_json"],
    [JSON.stringify({ messages: [{ role: "user", content: "x" }] }), 400, "model_not_found"],
    [JSON.stringify({ model: 42, messages: [] }), 400, "model_not_found"],
    [
      JSON.stringify({ model: "gpt-5-nope", messages: [{ role: "user", content: "x" }] }),
      404,
      "model_not_found",
    ],
    [
      JSON.stringify({ model: "gpt-test", stream: "yes", messages: [{ role: "user", content: "x" }] }),
      400,
      "invalid_request",
    ],
    [JSON.stringify({ model: "gpt-test", messages: "hello" }), 400, "invalid_request"],
    [
      JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "x".repeat(4096) }] }),
      413,
      "request_too_large",
    ],
  ];
  for (const [body, status, code] of cases) {
    const result = await post(chat, body);
    assert.equal(result.status, status, `${String(body).slice(0, 60)} -> ${JSON.stringify(result.error)}`);
    assert.equal(result.error.code, code);
    assert.equal(typeof result.error.message, "string");
    assert.ok("param" in result.error && "type" in result.error);
    assert.ok(result.headers.get("x-request-id"));
  }
  const unknown = await post(chat, JSON.stringify({ model: "gpt-5-nope", messages: [] }));
  assert.match(unknown.error.message, /'gpt-test'/, "the message lists the configured groups");

  // Too large without a content-length (chunked upload) is refused too.
  const chunked = new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"model":"gpt-test","x":"' + "y".repeat(5000) + '"}'));
      controller.close();
    },
  });
  assert.equal((await post(chat, chunked)).status, 413);

  const route = await fetch(`${proxy.url}/v1/nothing-here`);
  assert.equal(route.status, 404);
  const { error } = await route.json();
  assert.equal(error.code, "not_found");
  // What a user can call: the /v1 routes (each also without /v1) and the dashboard, which has no /v1 twin.
  const served = error.message.slice(error.message.indexOf("served: ") + 8).split(/, | \(/);
  for (
    const line of ["POST /v1/chat/completions", "GET /v1/metrics", "DELETE /v1/admin/keys/{name}", "GET /ui"]
  ) {
    assert.ok(served.includes(line), `${line} in ${error.message}`);
  }
  assert.ok(!served.includes("GET /metrics"), "a route's twin without /v1 is said once, not listed");
  assert.match(error.message, /each \/v1 route also without \/v1/);

  assert.equal(sim.count(), 0, "nothing reached the upstream");
});

test("stream: false and a missing stream are both plain JSON answers", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)]));
  for (const extra of [{ stream: false }, {}]) {
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "x" }], ...extra }),
    });
    assert.match(response.headers.get("content-type") ?? "", /application\/json/);
    assert.equal((await response.json()).object, "chat.completion");
  }
});

test("the SDK raises typed errors for proxy errors", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)]));
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "x", maxRetries: 0 });
  await assert.rejects(
    client.chat.completions.create({ model: "unknown-model", messages: [{ role: "user", content: "x" }] }),
    (error: unknown) => error instanceof OpenAI.NotFoundError && error.code === "model_not_found",
  );
});

test("x-request-id is echoed when sane and generated otherwise", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)]));
  const body = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "x" }] });
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "x-request-id": "abc-123" },
    body,
  });
  await response.body?.cancel();
  assert.equal(response.headers.get("x-request-id"), "abc-123");
  assert.equal(sim.last!.headers["x-request-id"], "abc-123", "the id travels upstream too");
  const generated = await fetch(`${proxy.url}/v1/models`, {
    headers: { "x-request-id": "bad id with spaces" },
  });
  await generated.body?.cancel();
  assert.notEqual(generated.headers.get("x-request-id"), "bad id with spaces");
  assert.ok(generated.headers.get("x-request-id"));
});
