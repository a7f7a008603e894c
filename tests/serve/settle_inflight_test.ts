/**
 * The start-up collection is a full, stop-the-world one (hundreds of ms on a large heap): it must wait for a
 * quiet moment, not only for a pause between new requests. Through the proxy's own server on loopback, whose
 * counts settle reads: a long streamed answer in flight holds it off, and it runs once the answer has been sent.
 */

import assert from "node:assert/strict";
import { type GcOptions, settleAfterStart } from "../../src/serve/settle.ts";
import { type Handler, serve } from "../../src/serve/server.ts";
import { test } from "../_support/test.ts";

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("no start-up collection while an answer is still being sent; one once it has been", async () => {
  const started = performance.now();
  const collectedAt: number[] = [];
  const gc = (_options?: GcOptions) => void collectedAt.push(performance.now() - started);
  const encoder = new TextEncoder();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // An answer of 8 events, 60 ms apart: ~480 ms in flight, with no new request meanwhile.
  const slow: Handler = () => {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((resolve) => timer = setTimeout(resolve, 60));
        controller.enqueue(encoder.encode(`data: ${sent}\n\n`));
        if (++sent === 8) controller.close();
      },
      cancel: () => clearTimeout(timer),
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  };
  const limits = { maxConnections: 16, keepaliveTimeoutMs: 5000, headerTimeoutMs: 5000 };
  await using server = serve({ hostname: "127.0.0.1", port: 0, ...limits }, slow);
  using _settling = settleAfterStart(server, { gc, quietMs: 40, rounds: 5 });
  await delay(150);
  assert.equal(collectedAt.length, 1, "one collection while nothing is in flight after start");
  const requestedAt = performance.now() - started;
  const answer = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  const text = await answer.text();
  const answeredAt = performance.now() - started;
  assert.equal(text.split("\n\n").length, 9, text);
  assert.deepEqual(
    collectedAt.filter((at) => at > requestedAt && at < answeredAt - 20),
    [],
    `collections at ${collectedAt.map(Math.round)} ms; the answer was in flight from ${
      Math.round(requestedAt)
    } ` +
      `to ${Math.round(answeredAt)} ms`,
  );
  const deadline = performance.now() + 2000;
  while (collectedAt.length < 2 && performance.now() < deadline) await delay(20);
  assert.equal(collectedAt.length, 2, "one more once the answer has been sent");
  clearTimeout(timer);
});
