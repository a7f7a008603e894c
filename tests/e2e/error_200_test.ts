/**
 * A 200 whose JSON is an error envelope (`{"error": {...}}`: a gateway in front of the endpoint that answers its
 * failures with a 200) is no answer: the request fails over to another endpoint, and the endpoint's failure is
 * counted, as for a 200 that is not JSON. An error that is the caller's passes through as it came.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { rawServer } from "../_support/raw_server.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

/** An upstream that answers every request with a 200 of `body`. */
const okUpstream = (body: string) =>
  rawServer(async (conn, read) => {
    while (await read()) {
      const bytes = encoder.encode(body);
      const head =
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${bytes.length}\r\n\r\n`;
      await conn.write(encoder.encode(head));
      await conn.write(bytes);
    }
  });

const SERVER_ERROR = JSON.stringify({
  error: { message: "Backend unavailable", type: "server_error", param: null, code: "backend_unavailable" },
});

test("a 200 that is an error envelope fails over: chat and embeddings get the other endpoint's answer", {
  timeout: 20_000,
}, async () => {
  await using bad = okUpstream(SERVER_ERROR);
  await using good = await SimUpstream.start({ name: "good", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(bad.url, { name: "bad", weight: 1000 }),
    endpointYaml(good.url, { name: "good", weight: 1 }),
  ], ["num_retries: 1", "allowed_fails: 2"]));
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
  const { data: chat, response } = await client.chat.completions.create({
    model: "gpt-test",
    messages: [{ role: "user", content: "hi" }],
  }).withResponse();
  assert.equal(chat.choices[0].message.content, "[good] echo: hi");
  assert.equal(response.headers.get("x-llmproxy-attempts"), "2");
  const embedded = await client.embeddings.create({ model: "gpt-test", input: "hi" });
  assert.ok(embedded.data[0].embedding.length > 0);
  const stats = await (await fetch(`${proxy.url}/stats`)).json();
  const badStats = stats.endpoints.find((endpoint: { id: string }) => endpoint.id === "bad");
  assert.equal(badStats.state, "cooling_down");
});

test("a 200 carrying the caller's own error passes through unchanged, without a failover", {
  timeout: 20_000,
}, async () => {
  const callers = JSON.stringify({
    error: { message: "Invalid 'messages'", type: "invalid_request_error", param: "messages", code: null },
  });
  await using bad = okUpstream(callers);
  await using good = await SimUpstream.start({ name: "good", quiet: true });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(bad.url, { name: "bad", weight: 1000 }),
    endpointYaml(good.url, { name: "good", weight: 1 }),
  ], ["num_retries: 1"]));
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
  });
  assert.equal(response.status, 200);
  assert.equal(await response.text(), callers);
  assert.equal(good.count(), 0);
});
