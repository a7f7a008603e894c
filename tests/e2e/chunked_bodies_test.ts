/**
 * A JSON body of unknown length (chunked: an SDK given a stream, `curl -T -`, a proxy in front that re-chunks) takes
 * its bytes from `max_inflight_body_bytes` as they arrive. Before, it was counted as `max_body_bytes` up front, so
 * with `max_body_bytes` above the pool a 2 KB chunked chat body was a final 413. Now: 200; 503 with Retry-After only
 * when the pool is full while its bytes arrive; 413 when the body itself passes `max_body_bytes` (or the whole pool).
 * Many chunked bodies at once never hold more than the pool.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const encoder = new TextEncoder();

const chat = (size: number) =>
  encoder.encode(JSON.stringify({
    model: "gpt-test",
    messages: [{ role: "user", content: "x".repeat(Math.max(0, size - 70)) }],
  }));

/** `bytes` sent chunked in pieces of `piece`, `pauseMs` apart (no content-length). */
function chunked(bytes: Uint8Array, piece: number, pauseMs = 0): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (at >= bytes.length) return controller.close();
      if (at > 0 && pauseMs > 0) await delay(pauseMs);
      controller.enqueue(bytes.slice(at, at + piece));
      at += piece;
    },
  });
}

const post = (proxy: RunningProxy, body: BodyInit) =>
  fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !ok(); i++) await delay(25);
  assert.ok(ok(), what);
}

test("a small chunked chat body is answered when max_body_bytes is above the in-flight pool", async () => {
  await using sim = await SimUpstream.start({ name: "s", quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url, { name: "s" })], [
      `max_body_bytes: ${8 * MiB}`,
      `max_inflight_body_bytes: ${MiB}`,
    ]),
    { logLevel: "error" },
  );
  const pool = proxy.services.bodyPool;

  // Raw fetch with a stream body: 2 KB in 512-byte pieces.
  const answer = await post(proxy, chunked(chat(2 * KiB), 512));
  const text = await answer.text();
  assert.equal(answer.status, 200, text.slice(0, 300));
  assert.equal(JSON.parse(text).object, "chat.completion");

  // The openai SDK with a fetch that sends its body as a stream, as a re-chunking proxy in front would.
  const client = new OpenAI({
    baseURL: `${proxy.url}/v1`,
    apiKey: "sk-client",
    maxRetries: 0,
    fetch: async (url: RequestInfo | URL, init?: RequestInit) => {
      const bytes = new Uint8Array(await new Response(init?.body).arrayBuffer());
      const headers = new Headers(init?.headers);
      headers.delete("content-length");
      return fetch(url, { ...init, headers, body: chunked(bytes, 700) });
    },
  });
  const completion = await client.chat.completions.create({
    model: "gpt-test",
    messages: [{ role: "user", content: "y".repeat(2000) }],
  });
  assert.equal(completion.object, "chat.completion");
  await until(`given back: ${pool.held}`, () => pool.held === 0);

  // Larger than the whole pool (under max_body_bytes or not): 413, final (no retry could pass).
  for (const size of [2 * MiB, 9 * MiB]) {
    const refused = await post(proxy, chunked(chat(size), 256 * KiB));
    const answer = await refused.json();
    assert.equal(refused.status, 413, `${size}: ${JSON.stringify(answer).slice(0, 200)}`);
    const { error } = answer;
    assert.equal(error.code, "request_too_large");
    assert.match(error.message, /max_inflight_body_bytes/);
  }
  await until(`given back: ${pool.held}`, () => pool.held === 0);
});

test("a chunked body that finds the pool full while it arrives gets 503 with Retry-After, then passes", async () => {
  await using sim = await SimUpstream.start({ name: "s", quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url, { name: "s" })], [
      `max_body_bytes: ${8 * MiB}`,
      `max_inflight_body_bytes: ${MiB}`,
    ]),
    { logLevel: "error" },
  );
  const pool = proxy.services.bodyPool;
  // A body of 900 KiB held while it waits for its last 10 bytes (fetch sends a stream chunked).
  const full = chat(900 * KiB);
  const held = new TransformStream<Uint8Array, Uint8Array>();
  const holding = fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body: held.readable });
  holding.catch(() => {}); // awaited below, unless an assertion fails first
  const writer = held.writable.getWriter();
  try {
    await writer.write(full.subarray(0, full.length - 10));
    await until(`the first body is held: ${pool.held}`, () => pool.held === full.length - 10);
    const busy = await post(proxy, chunked(chat(200 * KiB), 64 * KiB));
    const answer = await busy.json();
    assert.equal(busy.status, 503, JSON.stringify(answer).slice(0, 200));
    const { error } = answer;
    assert.equal(busy.headers.get("retry-after"), "1");
    assert.equal(error.code, "server_busy");
    assert.match(error.message, /max_inflight_body_bytes/);
    await writer.write(full.subarray(full.length - 10));
    await writer.close();
  } finally {
    await writer.abort().catch(() => {});
  }
  const first = await holding;
  assert.equal(first.status, 200);
  await first.body?.cancel();
  await until(`given back: ${pool.held}`, () => pool.held === 0);
  const retried = await post(proxy, chunked(chat(200 * KiB), 64 * KiB));
  assert.equal(retried.status, 200);
  await retried.body?.cancel();
});

test("40 chunked bodies at once never hold more than the pool; each is answered 200 or 503", {
  timeout: 60_000,
}, async () => {
  await using sim = await SimUpstream.start({ name: "s", quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url, { name: "s" })], [
      `max_body_bytes: ${8 * MiB}`,
      `max_inflight_body_bytes: ${2 * MiB}`,
    ]),
    { logLevel: "error" },
  );
  const pool = proxy.services.bodyPool;
  sim.latencyMs = 300; // bodies read whole stay held while their upstream answers
  let most = 0;
  let sampling = true;
  const sampler = (async () => {
    for (let i = 0; sampling && i < 6000; i++) {
      most = Math.max(most, pool.held);
      await delay(2);
    }
  })();
  const statuses = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
    const response = await post(proxy, chunked(chat(256 * KiB + i), 32 * KiB, 5));
    const body = await response.json();
    if (response.status === 503) {
      assert.equal(response.headers.get("retry-after"), "1");
      assert.equal(body.error.code, "server_busy");
    } else assert.equal(response.status, 200, JSON.stringify(body).slice(0, 300));
    return response.status;
  }));
  sampling = false;
  await sampler;
  const ok = statuses.filter((status) => status === 200).length;
  console.log(
    `40 chunked x 256 KiB, pool 2 MiB: ${ok} answered, ${40 - ok} got 503; most held ${most} bytes`,
  );
  assert.ok(ok >= 1, `some were served: ${ok}`);
  assert.ok(most <= 2 * MiB, `held ${most} bytes, more than the pool`);
  assert.ok(most > MiB, `the pool was used: ${most}`);
  await until(`given back: ${pool.held}`, () => pool.held === 0);
});
