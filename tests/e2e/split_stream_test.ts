/**
 * A stream whose first event arrives after its head, in pieces (the proxy reads the head alone and waits for the
 * first whole event before it commits to the endpoint): the client gets the events exactly; a stream cut after its
 * head, before any event, fails over to the next endpoint.
 */

import assert from "node:assert/strict";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { rawServer } from "../_support/raw_server.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const HEAD = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
const EVENTS = [
  `data: ${
    JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [{ delta: { content: "é a" } }] })
  }\n\n`,
  `data: ${
    JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [{ delta: { content: "b" } }] })
  }\n\n`,
  "data: [DONE]\n\n",
];
const CHAT = JSON.stringify({ model: "gpt-test", stream: true, messages: [{ role: "user", content: "hi" }] });

const chunk = (text: string) => `${encoder.encode(text).length.toString(16)}\r\n${text}\r\n`;

/** An upstream that answers every request with `pieces`, written apart, a few milliseconds between them. */
const piecewiseUpstream = (pieces: string[], close = false) =>
  rawServer(async (conn, read) => {
    while (await read()) {
      for (const piece of pieces) {
        await conn.write(encoder.encode(piece));
        await delay(15);
      }
      if (close) return conn.close();
    }
  });

async function stream(url: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: CHAT,
  });
  return { status: response.status, text: await response.text() };
}

test("a stream whose first event follows its head in pieces: every event passed on exactly", {
  timeout: 20_000,
}, async () => {
  const first = chunk(EVENTS[0]);
  await using upstream = piecewiseUpstream([
    HEAD,
    first.slice(0, 20), // the size line and the start of the first event
    first.slice(20),
    chunk(EVENTS[1]) + chunk(EVENTS[2]),
    "0\r\n\r\n",
  ]);
  await using proxy = await startProxy(groupYaml([endpointYaml(upstream.url)], ["num_retries: 0"]));
  for (let i = 0; i < 2; i++) { // the connection is kept and reused between answers
    const answer = await stream(proxy.url);
    assert.equal(answer.status, 200);
    assert.equal(answer.text, EVENTS.join(""));
  }
});

test("a stream cut after its head, before its first event, fails over to the next endpoint", {
  timeout: 20_000,
}, async () => {
  await using cut = piecewiseUpstream([HEAD, chunk('data: {"id":')], true); // half an event, then closed
  await using whole = piecewiseUpstream([HEAD, chunk(EVENTS[0]), chunk(EVENTS[2]), "0\r\n\r\n"]);
  const endpoints = [
    endpointYaml(cut.url, { name: "cut", weight: 1 }), // tried first
    endpointYaml(whole.url, { name: "whole", weight: 0 }),
  ];
  await using proxy = await startProxy(groupYaml(endpoints));
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: CHAT,
  });
  assert.equal(response.status, 200);
  assert.equal(await response.text(), EVENTS[0] + EVENTS[2]);
  assert.equal(response.headers.get("x-llmproxy-endpoint"), "whole");
  assert.equal(response.headers.get("x-llmproxy-attempts"), "2");
});
