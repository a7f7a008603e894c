/**
 * A JSON answer whose body arrives after its head, in pieces (a server that writes them apart, as Deno's own does;
 * at one connection the proxy then reads the head alone): the client gets the upstream's bytes exactly, framed by
 * length or by chunks (parsed: a 200 that is not JSON is the endpoint's failure), and an answer cut mid-body is a
 * failure, not a short answer.
 */

import assert from "node:assert/strict";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { rawServer } from "../_support/raw_server.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const ANSWER = JSON.stringify({
  id: "chatcmpl-split",
  object: "chat.completion",
  model: "upstream-model",
  choices: [{ index: 0, message: { role: "assistant", content: "é ".repeat(300) }, finish_reason: "stop" }],
  usage: { prompt_tokens: 5, completion_tokens: 300, total_tokens: 305 },
});
const CHAT = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] });

/** An upstream that answers every request with `pieces`: written apart, a few milliseconds between them. */
const piecewiseUpstream = (pieces: (string | Uint8Array)[]) =>
  rawServer(async (conn, read) => {
    while (await read()) {
      for (const piece of pieces) {
        await conn.write(typeof piece === "string" ? encoder.encode(piece) : piece);
        await delay(5);
      }
    }
  });

/** `bytes` cut in three, the second cut inside a two-byte character. */
function thirds(bytes: Uint8Array): Uint8Array[] {
  const a = Math.floor(bytes.length / 3);
  const b = bytes.indexOf(0xc3, a + 10) + 1;
  return [bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)];
}

async function chat(url: string): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: CHAT,
  });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

test("a JSON answer whose body follows its head in pieces, framed by length: passed on exactly", {
  timeout: 20_000,
}, async () => {
  const body = encoder.encode(ANSWER);
  await using upstream = piecewiseUpstream([
    `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`,
    ...thirds(body),
  ]);
  await using proxy = await startProxy(groupYaml([endpointYaml(upstream.url)], ["num_retries: 0"]));
  for (let i = 0; i < 3; i++) { // the connection is kept and reused between answers
    const answer = await chat(proxy.url);
    assert.equal(answer.status, 200);
    assert.equal(answer.text, ANSWER);
  }
  assert.equal(proxy.services.upstream.connectionsOpened, 1);
});

test(
  "a JSON answer in chunks that follow its head: passed on exactly (a 200 that did not parse would fail over)",
  {
    timeout: 20_000,
  },
  async () => {
    const body = encoder.encode(ANSWER);
    const chunk = (bytes: Uint8Array) => [`${bytes.length.toString(16)}\r\n`, bytes, "\r\n"];
    await using upstream = piecewiseUpstream([
      "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
      ...thirds(body).flatMap(chunk),
      "0\r\n\r\n",
    ]);
    await using proxy = await startProxy(groupYaml([endpointYaml(upstream.url)], ["num_retries: 0"]));
    const answer = await chat(proxy.url);
    assert.equal(answer.status, 200);
    assert.equal(answer.text, ANSWER);
  },
);

test("a JSON answer cut mid-body after its head: a failure of the endpoint, never a short answer", {
  timeout: 20_000,
}, async () => {
  const body = encoder.encode(ANSWER);
  await using upstream = piecewiseUpstream([
    `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`,
    body.subarray(0, 100),
  ]);
  // The upstream then waits for another request on the same connection: the proxy's body read is cut by its
  // timeout (a 504), or by the upstream's close when the test ends.
  await using proxy = await startProxy(
    groupYaml([endpointYaml(upstream.url, { extra: "          timeout: 1" })], [
      "num_retries: 0",
    ]),
  );
  const answer = await chat(proxy.url);
  assert.ok(answer.status >= 500, `status ${answer.status}`);
  assert.notEqual(answer.text, ANSWER);
  assert.match(answer.text, /"error"/);
});
