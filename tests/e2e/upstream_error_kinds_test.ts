/**
 * How an upstream's error inside a 200 is told: a deployment missing on one endpoint (`model_not_found`, Azure's
 * `DeploymentNotFound`) is that endpoint's problem and fails over, as the same error with a 404 does; an
 * `event:error` without a space after the colon is an error event (SSE allows both), and so is a data-only
 * Responses event of type `error`; and when every endpoint's answer opens with an error, the client gets the
 * upstream's error (message, type, code, param) with a status that fits it, the endpoint's key and URL masked, not
 * the proxy's 503.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { rawServer } from "../_support/raw_server.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

/** An upstream that answers every request with a 200 of `body` (`type`: its content type), chunked. */
const answering = (body: (url: string) => string, type = "text/event-stream") => {
  const server = rawServer(async (conn, read) => {
    while (await read()) {
      const bytes = encoder.encode(body(server.url));
      const head = `HTTP/1.1 200 OK\r\ncontent-type: ${type}\r\ntransfer-encoding: chunked\r\n\r\n`;
      await conn.write(encoder.encode(`${head}${bytes.length.toString(16)}\r\n`));
      await conn.write(bytes);
      await conn.write(encoder.encode("\r\n0\r\n\r\n"));
    }
  });
  return server;
};

const chatError = (error: Record<string, unknown>) => `data: ${JSON.stringify({ error })}\n\n`;
const MODEL_NOT_FOUND = {
  message: "The model `gpt-x` does not exist or you do not have access to it.",
  type: "invalid_request_error",
  param: null,
  code: "model_not_found",
};

async function twoEndpoints(bad: { url: string }, good: { url: string }) {
  return await startProxy(groupYaml([
    endpointYaml(bad.url, { name: "bad", weight: 1000 }),
    endpointYaml(good.url, { name: "good", weight: 1 }),
  ], ["num_retries: 1"]));
}

const post = (url: string, path: string, body: Record<string, unknown>) =>
  fetch(`${url}/v1/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", ...body }),
  });

test("model_not_found opening a stream fails over, as the same error with a 404 does", {
  timeout: 20_000,
}, async () => {
  await using bad = answering(() => chatError(MODEL_NOT_FOUND));
  await using good = await SimUpstream.start({ name: "good", quiet: true, chunks: 2 });
  await using proxy = await twoEndpoints(bad, good);
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
  const { data: stream, response } = await client.chat.completions.create({
    model: "gpt-test",
    stream: true,
    messages: [{ role: "user", content: "hi" }],
  }).withResponse();
  let text = "";
  for await (const part of stream) text += part.choices[0]?.delta?.content ?? "";
  assert.equal(response.headers.get("x-llmproxy-endpoint"), "good");
  assert.equal(text, "[good] echo: hi");
});

test("model_not_found or Azure's DeploymentNotFound in a 200 JSON envelope fails over", {
  timeout: 20_000,
}, async () => {
  const envelopes = [
    { error: MODEL_NOT_FOUND },
    {
      error: { code: "DeploymentNotFound", message: "The API deployment for this resource does not exist." },
    },
  ];
  for (const envelope of envelopes) {
    await using bad = answering(() => JSON.stringify(envelope), "application/json");
    await using good = await SimUpstream.start({ name: "good", quiet: true });
    await using proxy = await twoEndpoints(bad, good);
    const response = await post(proxy.url, "chat/completions", {
      messages: [{ role: "user", content: "hi" }],
    });
    const body = await response.json();
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(response.headers.get("x-llmproxy-endpoint"), "good");
    assert.match(body.choices[0].message.content, /\[good\]/);
  }
});

test("a Responses stream opening with `event:error` (no space) fails over", { timeout: 20_000 }, async () => {
  await using bad = answering(() =>
    `event:error\ndata:{"type":"error","code":"server_error","message":"overloaded","param":null,` +
    `"sequence_number":0}\n\n`
  );
  await using good = await SimUpstream.start({ name: "good", quiet: true });
  await using proxy = await twoEndpoints(bad, good);
  const response = await post(proxy.url, "responses", { input: "hi", stream: true });
  const text = await response.text();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("x-llmproxy-endpoint"), "good");
  assert.match(text, /response\.completed/);
});

test("a Responses stream opening with a data-only error event (no `event:` line) fails over", {
  timeout: 20_000,
}, async () => {
  await using bad = answering(() =>
    `data: {"type":"error","code":"server_error","message":"overloaded","param":null,"sequence_number":0}\n\n`
  );
  await using good = await SimUpstream.start({ name: "good", quiet: true });
  await using proxy = await twoEndpoints(bad, good);
  const response = await post(proxy.url, "responses", { input: "hi", stream: true });
  const text = await response.text();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("x-llmproxy-endpoint"), "good", text.slice(0, 200));
  assert.match(text, /response\.completed/);
});

test("every endpoint's stream opens with an error: the SDK gets the upstream's error, key and URL masked", {
  timeout: 20_000,
}, async () => {
  const cases = [
    {
      error: {
        message: "The server had an error processing your request (key KEY, at URL)",
        type: "server_error",
        param: null,
        code: "server_error",
      },
      status: 502,
    },
    { error: MODEL_NOT_FOUND, status: 404 },
  ];
  for (const { error, status } of cases) {
    // Each upstream quotes its own key and URL.
    const quoting = (key: string) => (url: string) =>
      chatError({ ...error, message: error.message.replace("URL", url).replace("KEY", key) });
    await using one = answering(quoting("sk-test-one"));
    await using two = answering(quoting("sk-test-two"));
    await using proxy = await startProxy(groupYaml([
      endpointYaml(one.url, { name: "one" }),
      endpointYaml(two.url, { name: "two" }),
    ], ["num_retries: 1"]));
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const failure = await client.chat.completions.create({
      model: "gpt-test",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    }).then(() => undefined, (thrown) => thrown);
    assert.ok(failure instanceof OpenAI.APIError, String(failure));
    assert.equal(failure.status, status);
    assert.equal(failure.type, error.type);
    assert.equal(failure.code, error.code);
    assert.equal(failure.param, null);
    const message = (failure.error as { message: string }).message;
    assert.ok(message.startsWith(error.message.slice(0, 30)), message);
    assert.ok(!/sk-test|127\.0\.0\.1/.test(message), message);
  }
});

test("every endpoint's Responses stream opens with an error event: the client gets it as an OpenAI error", {
  timeout: 20_000,
}, async () => {
  const event =
    `event: error\ndata: {"type":"error","code":"server_error","message":"The model is overloaded",` +
    `"param":null,"sequence_number":0}\n\n`;
  await using one = answering(() => event);
  await using two = answering(() => event);
  await using proxy = await startProxy(groupYaml([
    endpointYaml(one.url, { name: "one" }),
    endpointYaml(two.url, { name: "two" }),
  ], ["num_retries: 1"]));
  const response = await post(proxy.url, "responses", { input: "hi", stream: true });
  const body = await response.json();
  assert.equal(response.status, 502);
  assert.deepEqual(body, {
    error: { message: "The model is overloaded", type: "server_error", param: null, code: "server_error" },
  });
});

test(
  "every endpoint's error names a 401 of its own (its key refused): the client gets a 502, names masked and cut",
  {
    timeout: 20_000,
  },
  async () => {
    // Azure names the status in the error; a 401 is about the endpoint's key, not the client's, and a code or type
    // may quote what the message does.
    const refused = (key: string) => () =>
      chatError({
        message: "Access denied due to invalid subscription key.",
        type: `auth_${key}`,
        code: `Denied${"x".repeat(300)}`,
        param: null,
        status: 401,
      });
    await using one = answering(refused("sk-test-one"));
    await using two = answering(refused("sk-test-two"));
    await using proxy = await startProxy(groupYaml([
      endpointYaml(one.url, { name: "one" }),
      endpointYaml(two.url, { name: "two" }),
    ], ["num_retries: 1"]));
    const response = await post(proxy.url, "chat/completions", {
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    const { error } = await response.json();
    assert.equal(response.status, 502);
    assert.equal(error.message, "Access denied due to invalid subscription key.");
    assert.ok(!/sk-test/.test(error.type), error.type);
    assert.ok(error.code.startsWith("Denied") && error.code.length <= 100, error.code);
  },
);
