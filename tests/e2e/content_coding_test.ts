/**
 * Upstream answers in a content coding the proxy did not ask for (it asks for `identity`): a load balancer that
 * compresses anyway. Brotli is decoded as gzip and deflate are, whatever the route; a coding the proxy cannot
 * decode (zstd) fails the attempt, never reaching the client as bytes that lost their `content-encoding`.
 */

import assert from "node:assert/strict";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { rawServer } from "../_support/raw_server.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const AUDIO = new Uint8Array(40_000).map((_, i) => (i * 7919) % 251);
const ANSWER = JSON.stringify({
  id: "chatcmpl-coded",
  object: "chat.completion",
  model: "upstream-model",
  choices: [{ index: 0, message: { role: "assistant", content: "coded" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
});

/** An upstream that answers every request with `body` in `coding`, framed by length. */
const codedUpstream = (type: string, coding: string, body: Uint8Array) =>
  rawServer(async (conn, read) => {
    while (await read()) {
      const head = `HTTP/1.1 200 OK\r\ncontent-type: ${type}\r\ncontent-encoding: ${coding}\r\n` +
        `content-length: ${body.length}\r\n\r\n`;
      await conn.write(encoder.encode(head));
      await conn.write(body);
    }
  });

const speech = (url: string) =>
  fetch(`${url}/v1/audio/speech`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", input: "hello", voice: "alloy" }),
  });

test(
  "a brotli answer is decoded: speech's bytes and a chat answer reach the client as the upstream meant them",
  {
    timeout: 20_000,
  },
  async () => {
    await using audio = codedUpstream("audio/mpeg", "br", new Uint8Array(brotliCompressSync(AUDIO)));
    await using proxy = await startProxy(groupYaml([endpointYaml(audio.url)], ["num_retries: 0"]));
    const spoken = await speech(proxy.url);
    assert.equal(spoken.status, 200);
    assert.equal(spoken.headers.get("content-encoding"), null);
    const bytes = new Uint8Array(await spoken.arrayBuffer());
    assert.ok(
      bytes.length === AUDIO.length && bytes.every((byte, i) => byte === AUDIO[i]),
      `${bytes.length} bytes`,
    );

    await using chat = codedUpstream("application/json", "br", new Uint8Array(brotliCompressSync(ANSWER)));
    await using chatProxy = await startProxy(groupYaml([endpointYaml(chat.url)], ["num_retries: 0"]));
    const answer = await fetch(`${chatProxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(answer.status, 200);
    assert.equal(await answer.text(), ANSWER);
  },
);

test("a coding the proxy cannot decode (zstd, or two codings) fails over; it never reaches the client", {
  timeout: 20_000,
}, async () => {
  for (
    const [client, coding] of [["http1", "zstd"], ["http1", "gzip, br"], ["fetch", "zstd"], [
      "fetch",
      "gzip, br",
    ]]
  ) {
    await using odd = codedUpstream("audio/mpeg", coding, new Uint8Array(gzipSync(AUDIO)));
    await using sim = await SimUpstream.start({ name: "good", quiet: true });
    await using proxy = await startProxy(groupYaml([
      endpointYaml(odd.url, { name: "odd", weight: 1000 }),
      endpointYaml(sim.url, { name: "good", weight: 1 }),
    ], ["num_retries: 1", `upstream_client: ${client}`]));
    const spoken = await speech(proxy.url);
    const bytes = new Uint8Array(await spoken.arrayBuffer());
    assert.equal(spoken.status, 200, `${client} ${coding}`);
    assert.equal(spoken.headers.get("x-llmproxy-endpoint"), "good", `${client} ${coding}`);
    assert.equal(spoken.headers.get("content-encoding"), null, `${client} ${coding}`);
    assert.notDeepEqual(
      bytes.subarray(0, 2),
      new Uint8Array([0x1f, 0x8b]),
      `${coding}: gzip bytes passed on`,
    );
    assert.equal(sim.count(), 1);
  }
});

test("upstream_client fetch: gzip, brotli and deflate arrive decoded, without their content-encoding", {
  timeout: 20_000,
}, async () => {
  const cases = [
    // fetch decodes gzip and brotli (and keeps their header, which must not reach the client then).
    { coding: "gzip", sent: new Uint8Array(gzipSync(AUDIO)) },
    { coding: "br", sent: new Uint8Array(brotliCompressSync(AUDIO)) },
    // fetch does not decode deflate: the proxy does, as its HTTP/1.1 client does.
    { coding: "deflate", sent: new Uint8Array(deflateSync(AUDIO)) },
  ];
  for (const { coding, sent } of cases) {
    await using upstream = codedUpstream("audio/mpeg", coding, sent);
    await using proxy = await startProxy(
      groupYaml([endpointYaml(upstream.url)], ["num_retries: 0", "upstream_client: fetch"]),
    );
    const spoken = await speech(proxy.url);
    const bytes = new Uint8Array(await spoken.arrayBuffer());
    assert.equal(spoken.status, 200, coding);
    assert.equal(spoken.headers.get("content-encoding"), null, coding);
    assert.ok(
      bytes.length === AUDIO.length && bytes.every((byte, i) => byte === AUDIO[i]),
      `${coding}: ${bytes.length} bytes`,
    );
  }
});

test(
  "a deflated stream that quotes the endpoint's key reaches the client decoded, the key masked (both clients)",
  {
    timeout: 20_000,
  },
  async () => {
    const events =
      `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":` +
      `"echo sk-test-key"}}]}\n\ndata: [DONE]\n\n`;
    for (const client of ["http1", "fetch"]) {
      await using upstream = codedUpstream(
        "text/event-stream",
        "deflate",
        new Uint8Array(deflateSync(events)),
      );
      await using proxy = await startProxy(
        groupYaml([endpointYaml(upstream.url)], ["num_retries: 0", `upstream_client: ${client}`]),
      );
      const answer = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "gpt-test",
          stream: true,
          messages: [{ role: "user", content: "hi" }],
        }),
      });
      assert.equal(answer.headers.get("content-encoding"), null, client);
      const text = await answer.text();
      assert.equal(answer.status, 200, client);
      assert.equal(text, events.replace("sk-test-key", "*".repeat("sk-test-key".length)), client);
    }
  },
);

test("an answer labelled `content-encoding: identity` reaches the client as a plain one, without the label", {
  timeout: 20_000,
}, async () => {
  for (const client of ["http1", "fetch"]) {
    await using upstream = codedUpstream("audio/mpeg", "identity", AUDIO);
    await using proxy = await startProxy(
      groupYaml([endpointYaml(upstream.url)], ["num_retries: 0", `upstream_client: ${client}`]),
    );
    const spoken = await speech(proxy.url);
    const bytes = new Uint8Array(await spoken.arrayBuffer());
    assert.equal(spoken.status, 200, client);
    assert.equal(spoken.headers.get("content-encoding"), null, client);
    assert.equal(bytes.length, AUDIO.length, client);
  }
});
