/**
 * An answer passed through unread (speech audio, a file's content) that the upstream cuts before its end: the
 * client sees the cut (its read fails) instead of a shorter 200 body presented as complete, and it counts as the
 * endpoint's failure (in `/stats`, its health, `/metrics`), not as the success its head looked like.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { rawServer } from "../_support/raw_server.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

/** An upstream that answers every request with the head of a `length`-byte body and `sent` bytes of it, then leaves. */
const cutting = (framing: "length" | "chunked") =>
  rawServer(async (conn, read) => {
    if (!(await read())) return;
    const part = new Uint8Array(1_000).fill(65);
    if (framing === "length") {
      await conn.write(
        encoder.encode("HTTP/1.1 200 OK\r\ncontent-type: audio/mpeg\r\ncontent-length: 10000\r\n\r\n"),
      );
      await conn.write(part);
    } else {
      await conn.write(
        encoder.encode(
          "HTTP/1.1 200 OK\r\ncontent-type: audio/mpeg\r\ntransfer-encoding: chunked\r\n\r\n3e8\r\n",
        ),
      );
      await conn.write(part);
      await conn.write(encoder.encode("\r\n"));
    }
    // Closed by the server once this returns: the body ends before its length (or its last chunk).
  });

// deno-lint-ignore no-explicit-any
async function endpointStats(url: string): Promise<any> {
  const stats = await (await fetch(`${url}/stats`)).json();
  return stats.endpoints.find((endpoint: { id: string }) => endpoint.id === "cut");
}

const CASES = [["length", "http1"], ["chunked", "http1"], ["length", "fetch"]] as const;
for (const [framing, client] of CASES) {
  test(
    `a speech answer cut mid-body (${framing}, ${client}): the client's read fails, its failure is counted`,
    {
      timeout: 20_000,
    },
    async () => {
      await using upstream = cutting(framing);
      await using proxy = await startProxy(
        groupYaml([endpointYaml(upstream.url, { name: "cut" })], [`upstream_client: ${client}`]),
      );
      const response = await fetch(`${proxy.url}/v1/audio/speech`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-test", input: "hi", voice: "alloy" }),
      });
      assert.equal(response.status, 200);
      const read = await response.bytes().then((bytes) => bytes.length, (error) => error);
      assert.ok(read instanceof Error, `the client read ${read} bytes as a whole answer`);
      let stats = await endpointStats(proxy.url);
      for (let i = 0; i < 50 && stats.failures === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        stats = await endpointStats(proxy.url);
      }
      assert.equal(stats.failures, 1);
      assert.equal(stats.successes, 0);
      assert.equal(stats.state, "cooling_down");
      const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
      assert.match(metrics, /llmproxy_cooldowns_total\{[^}]*endpoint="cut"[^}]*\} 1/);
    },
  );
}

test("the SDK's speech call over an answer cut mid-body fails instead of returning a short file", {
  timeout: 20_000,
}, async () => {
  await using upstream = cutting("length");
  await using proxy = await startProxy(groupYaml([endpointYaml(upstream.url, { name: "cut" })]));
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
  const outcome = await client.audio.speech.create({ model: "gpt-test", input: "hi", voice: "alloy" })
    .then((response) => response.arrayBuffer())
    .then((buffer) => buffer.byteLength, (error) => error);
  assert.ok(outcome instanceof Error, `the SDK returned ${outcome} bytes`);
});
