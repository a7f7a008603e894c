/**
 * A stream whose first event is the upstream's own error (`data: {"error": ...}` for Chat Completions, an `error`
 * event for Responses; an overloaded deployment does this after its 200): nothing has reached the client yet, so
 * it fails over to another endpoint like a stream that died before its first byte, and counts as the endpoint's
 * failure. An error that is the caller's (`invalid_request_error`) reaches the client as the upstream sent it.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { rawServer } from "../_support/raw_server.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const SSE_HEAD = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
const chunk = (text: string) => `${encoder.encode(text).length.toString(16)}\r\n${text}\r\n`;

/** An upstream that answers every request with a 200 stream of `events`, in one chunk each. */
const erringUpstream = (events: string[]) =>
  rawServer(async (conn, read) => {
    while (await read()) {
      await conn.write(encoder.encode(SSE_HEAD + events.map(chunk).join("") + "0\r\n\r\n"));
    }
  });

const SERVER_ERROR = `data: {"error":{"message":"The server had an error while processing your request.",` +
  `"type":"server_error","param":null,"code":null}}\n\n`;

test(
  "a chat stream whose first event is a server error fails over; the SDK gets the other endpoint's answer",
  {
    timeout: 20_000,
  },
  async () => {
    await using bad = erringUpstream([SERVER_ERROR, "data: [DONE]\n\n"]);
    await using good = await SimUpstream.start({ name: "good", quiet: true, chunks: 3 });
    await using proxy = await startProxy(groupYaml([
      endpointYaml(bad.url, { name: "bad", weight: 1000 }),
      endpointYaml(good.url, { name: "good", weight: 1 }),
    ], ["num_retries: 1", "allowed_fails: 1"]));
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const { data: stream, response } = await client.chat.completions.create({
      model: "gpt-test",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    }).withResponse();
    let text = "";
    for await (const part of stream) text += part.choices[0]?.delta?.content ?? "";
    assert.equal(response.headers.get("x-llmproxy-endpoint"), "good");
    assert.equal(response.headers.get("x-llmproxy-attempts"), "2");
    assert.equal(text, "[good] echo: hi");
    const stats = await (await fetch(`${proxy.url}/stats`)).json();
    const badStats = stats.endpoints.find((endpoint: { id: string }) => endpoint.id === "bad");
    assert.equal(badStats.state, "cooling_down");
  },
);

test(
  "a Responses stream whose first event is an error event fails over too",
  { timeout: 20_000 },
  async () => {
    await using bad = erringUpstream([
      `event: error\ndata: {"type":"error","code":"server_error","message":"overloaded","param":null,` +
      `"sequence_number":0}\n\n`,
    ]);
    await using good = await SimUpstream.start({ name: "good", quiet: true });
    await using proxy = await startProxy(groupYaml([
      endpointYaml(bad.url, { name: "bad", weight: 1000 }),
      endpointYaml(good.url, { name: "good", weight: 1 }),
    ], ["num_retries: 1"]));
    const response = await fetch(`${proxy.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-test", input: "hi", stream: true }),
    });
    const text = await response.text();
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-llmproxy-endpoint"), "good");
    assert.match(text, /response\.completed/);
  },
);

test("a caller's error as a stream's first event reaches the client unchanged, without a failover", {
  timeout: 20_000,
}, async () => {
  const callerError = `data: {"error":{"message":"This model's maximum context length is 8192 tokens.",` +
    `"type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}\n\n`;
  await using bad = erringUpstream([callerError]);
  await using good = await SimUpstream.start({ name: "good", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(bad.url, { name: "bad", weight: 1000 }),
    endpointYaml(good.url, { name: "good", weight: 1 }),
  ], ["num_retries: 1"]));
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", stream: true, messages: [{ role: "user", content: "hi" }] }),
  });
  assert.equal(await response.text(), callerError);
  assert.equal(response.headers.get("x-llmproxy-endpoint"), "bad");
  assert.equal(good.count(), 0);
});

test(
  "a Responses error event naming the caller's error (flat or nested) reaches the client, without a failover",
  {
    timeout: 20_000,
  },
  async () => {
    const events = [
      `event: error\ndata: {"type":"error","code":"invalid_prompt","message":"bad prompt","param":null,` +
      `"sequence_number":0}\n\n`,
      `event: error\ndata: {"type":"error","error":{"type":"invalid_request_error","code":null,` +
      `"message":"bad prompt","param":"input"},"sequence_number":0}\n\n`,
    ];
    for (const event of events) {
      await using bad = erringUpstream([event]);
      await using good = await SimUpstream.start({ name: "good", quiet: true });
      await using proxy = await startProxy(groupYaml([
        endpointYaml(bad.url, { name: "bad", weight: 1000 }),
        endpointYaml(good.url, { name: "good", weight: 1 }),
      ], ["num_retries: 1"]));
      const response = await fetch(`${proxy.url}/v1/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-test", input: "hi", stream: true }),
      });
      assert.equal(await response.text(), event);
      assert.equal(good.count(), 0);
    }
  },
);

test("a stream request answered by a 200 with a JSON error envelope instead of a stream fails over", {
  timeout: 20_000,
}, async () => {
  const envelope = JSON.stringify({ error: { message: "Backend unavailable", type: "server_error" } });
  await using bad = rawServer(async (conn, read) => {
    while (await read()) {
      const head =
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${envelope.length}\r\n\r\n`;
      await conn.write(encoder.encode(head + envelope));
    }
  });
  await using good = await SimUpstream.start({ name: "good", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(bad.url, { name: "bad", weight: 1000 }),
    endpointYaml(good.url, { name: "good", weight: 1 }),
  ], ["num_retries: 1"]));
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", stream: true, messages: [{ role: "user", content: "hi" }] }),
  });
  const text = await response.text();
  assert.equal(response.headers.get("x-llmproxy-endpoint"), "good");
  assert.match(text, /data: \[DONE\]/);
});

test(
  "callers' errors in OpenAI's and Azure's other shapes pass unchanged too (no failover, the endpoint not failed)",
  { timeout: 20_000 },
  async () => {
    const cases: [path: string, event: string][] = [
      // Responses: an image the caller sent that cannot be read.
      [
        "/v1/responses",
        `event: error\ndata: {"type":"error","code":"image_parse_error","message":"The image could not be parsed.",` +
        `"param":null,"sequence_number":0}\n\n`,
      ],
      // Responses: the prompt refused by policy.
      [
        "/v1/responses",
        `event: error\ndata: {"type":"error","code":"bio_policy","message":"Refused.","param":null,` +
        `"sequence_number":0}\n\n`,
      ],
      // Azure: a PascalCase code with the HTTP status it stands for.
      [
        "/v1/chat/completions",
        `data: {"error":{"code":"BadRequest","message":"The messages are malformed.","status":400}}\n\n`,
      ],
      // A parameter of the request named.
      [
        "/v1/chat/completions",
        `data: {"error":{"message":"Too many tools.","type":"server_error","param":"tools","code":null}}\n\n`,
      ],
    ];
    let event = "";
    await using bad = rawServer(async (conn, read) => {
      while (await read()) await conn.write(encoder.encode(SSE_HEAD + chunk(event) + "0\r\n\r\n"));
    });
    await using good = await SimUpstream.start({ name: "good", quiet: true });
    await using proxy = await startProxy(groupYaml([
      endpointYaml(bad.url, { name: "bad", weight: 1000 }),
      endpointYaml(good.url, { name: "good", weight: 1 }),
    ], ["num_retries: 1", "allowed_fails: 1"]));
    for (const [path, sent] of cases) {
      event = sent;
      const response = await fetch(`${proxy.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "gpt-test",
          stream: true,
          input: "hi",
          messages: [{ role: "user", content: "hi" }],
        }),
      });
      assert.equal(await response.text(), sent);
      assert.equal(response.headers.get("x-llmproxy-endpoint"), "bad", sent);
    }
    assert.equal(good.count(), 0);
    const stats = await (await fetch(`${proxy.url}/stats`)).json();
    assert.notEqual(
      stats.endpoints.find((endpoint: { id: string }) => endpoint.id === "bad").state,
      "cooling_down",
    );
  },
);
