/**
 * A cached stream is the stream the first client got, byte for byte: for the client of the miss, for clients
 * coalesced onto it, and for a hit replayed from the store. Upstream bytes chosen to be awkward: events cut
 * across reads and several in one read, CR, CR-LF and LF line ends, a byte-order mark opening an event in the
 * middle of the stream (a client reads its first field as `\uFEFFdata`, no data: the replay must not turn it
 * into one), and a U+FFFD sent as such.
 */

import assert from "node:assert/strict";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const BOM = "\uFEFF";
const event = (content: string) =>
  `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"${content}"}}]}`;
/** The upstream's reads, in order (each written on its own, a few ms apart). */
const READS = [
  `${event("Hé")}\n\n${event("llo")}\n\n`, // two whole events in one read
  `${event("a\uFFFDb")}\r\n\r\n${event("cr")}\r`, // CRLF; then CR, its blank line's CR in the next read
  `\r${BOM}: a comment that opens with a BOM\n\n`,
  `${BOM}data: {"ignored":"a client reads the field name \\uFEFFdata"}\n\n`,
  event("cut across\\u00e9").slice(0, -20), // an event cut across reads, mid-string
  `${event("cut across\\u00e9").slice(-20)}\n\ndata: [DONE]\n\n`,
];
const encoder = new TextEncoder();
const STREAM = encoder.encode(READS.join(""));

test(
  "a cached stream, its coalesced copies and its replay are the upstream's bytes (BOM, CR, CRLF, U+FFFD, cuts)",
  {
    timeout: 20_000,
  },
  async () => {
    let calls = 0;
    await using upstream = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (request) => {
        await request.arrayBuffer();
        calls++;
        const body = new ReadableStream<Uint8Array>({
          async start(controller) {
            for (const read of READS) {
              controller.enqueue(encoder.encode(read));
              await delay(15);
            }
            controller.close();
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      },
    );
    await using proxy = await startProxy(
      groupYaml([endpointYaml(`http://127.0.0.1:${upstream.addr.port}`)], ["cache: true"]),
    );
    const ask = async () => {
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({
          model: "gpt-test",
          stream: true,
          messages: [{ role: "user", content: "bytes" }],
        }),
      });
      return {
        cache: response.headers.get("x-llmproxy-cache"),
        bytes: new Uint8Array(await response.arrayBuffer()),
      };
    };
    const together = await Promise.all([ask(), ask(), ask()]);
    assert.equal(calls, 1);
    assert.deepEqual(together.map((answer) => answer.cache).sort(), ["COALESCED", "COALESCED", "MISS"]);
    for (const answer of together) {
      assert.deepEqual(
        answer.bytes,
        STREAM,
        `${answer.cache}: the upstream's bytes`,
      );
    }
    await proxy.services.cache.settled();
    const hit = await ask();
    assert.equal(hit.cache, "HIT");
    assert.equal(calls, 1);
    assert.deepEqual(hit.bytes, STREAM, "the replay: the upstream's bytes");
  },
);
