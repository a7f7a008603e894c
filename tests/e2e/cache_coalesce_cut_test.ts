/**
 * Coalesced streams of ~2 MB, a follower reading far behind its leader: each client gets the same bytes, every one
 * once and in order. When the upstream cuts the stream, that is every byte before the cut, then the proxy's error
 * event, and nothing is stored; when the stream is larger than `max_entry_bytes`, the broadcast keeps only what
 * the follower has yet to read (the leader waits for it) and nothing is stored either.
 */

import assert from "node:assert/strict";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { rawServer } from "../_support/raw_server.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const event = (i: number) =>
  `data: {"choices":[{"index":0,"delta":{"content":"${String(i).padStart(5, "0")} ${
    "x".repeat(1_000)
  }"}}]}\n\n`;
const SENT = Array.from({ length: 2_000 }, (_, i) => event(i)).join("");
const DONE = "data: [DONE]\n\n";

/**
 * A proxy (cache on, `maxEntryBytes`) before an upstream that sends `SENT` (a pause after its first 16 KB, then fast),
 * then cuts or ends with DONE.
 */
async function setup(options: { cut: boolean; maxEntryBytes: number }) {
  let calls = 0;
  const upstream = rawServer(async (conn, read) => {
    while (await read()) {
      calls++;
      await conn.write(encoder.encode(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
      ));
      const body = options.cut ? SENT : SENT + DONE;
      for (let at = 0; at < body.length; at += 16_000) {
        const piece = encoder.encode(body.slice(at, at + 16_000));
        await conn.write(encoder.encode(`${piece.length.toString(16)}\r\n`));
        await conn.write(piece);
        await conn.write(encoder.encode("\r\n"));
        if (at === 0) await delay(200); // the follower joins while the first event is all there is
      }
      // Cut: the connection drops (once the leader has it all) without the last chunk.
      if (options.cut) return await delay(300);
      await conn.write(encoder.encode("0\r\n\r\n"));
    }
  });
  const proxy = await startProxy(
    groupYaml([endpointYaml(upstream.url)], [
      "cache: true",
      `cache_params: { max_entry_bytes: ${options.maxEntryBytes} }`,
    ]),
  );
  const ask = () =>
    fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model: "gpt-test", stream: true, messages: [{ role: "user", content: "big" }] }),
    });
  return {
    proxy,
    ask,
    calls: () => calls,
    [Symbol.asyncDispose]: async () => {
      await proxy[Symbol.asyncDispose]();
      await upstream[Symbol.asyncDispose]();
    },
  };
}

/** A client's whole body, read `pauseMs` apart. */
async function readAll(response: Response, pauseMs = 0) {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    if (pauseMs > 0) await delay(pauseMs);
    const { done, value } = await reader.read();
    if (done) return text;
    text += decoder.decode(value, { stream: true });
  }
}

/** A leader and a follower of one flight, by their verdicts. */
async function flight(ask: () => Promise<Response>) {
  const leader = await ask();
  const follower = await ask(); // it joins during the upstream's pause after its first piece
  assert.deepEqual(
    [leader.headers.get("x-llmproxy-cache"), follower.headers.get("x-llmproxy-cache")],
    ["MISS", "COALESCED"],
  );
  return { leader, follower };
}

test(
  "a coalesced stream cut upstream: the leader and a follower far behind get the same bytes, none stored",
  {
    timeout: 20_000,
  },
  async () => {
    await using s = await setup({ cut: true, maxEntryBytes: 8_000_000 });
    const { leader, follower } = await flight(s.ask);
    const led = await readAll(leader);
    // The follower has not read a byte yet: ~2 MB wait for it, in the proxy and in the sockets.
    const followed = await readAll(follower);
    assert.equal(s.calls(), 1);
    assert.ok(led.startsWith(SENT), "the leader: all that was sent");
    assert.match(led.slice(SENT.length), /^data: \{"error":\{.*"upstream_stream_error"\}\}\n\n$/);
    assert.equal(followed, led, "the follower: what the leader got");
    await s.proxy.services.cache.settled();
    const again = await s.ask();
    // Nothing stored (a hit would be served): the request goes on to the endpoint, cooling down after the cut.
    assert.deepEqual([again.status, again.headers.get("x-llmproxy-cache")], [503, null]);
    assert.equal((await again.json()).error.code, "no_healthy_endpoint");
  },
);

test("a coalesced stream over max_entry_bytes: a slow follower gets every byte once, in order; none stored", {
  timeout: 30_000,
}, async () => {
  await using s = await setup({ cut: false, maxEntryBytes: 100_000 });
  const { leader, follower } = await flight(s.ask);
  const [led, followed] = await Promise.all([readAll(leader), readAll(follower, 1)]);
  assert.equal(s.calls(), 1);
  assert.equal(led, SENT + DONE, "the leader");
  assert.equal(followed, SENT + DONE, "the slow follower");
  await s.proxy.services.cache.settled();
  const again = await s.ask();
  assert.equal(again.headers.get("x-llmproxy-cache"), "MISS", "too large to store");
  await again.body?.cancel();
});
