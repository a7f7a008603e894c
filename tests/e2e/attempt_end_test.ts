/**
 * An attempt that ends in an error rather than an answer still frees its endpoint: a client that leaves while its
 * request waits for the upstream's head, and an answer whose head announces more than `max_response_bytes`. The
 * endpoint's in-flight count (what the balancer weighs, /stats `in_flight`) is back to 0 after each; the attempts
 * stage is promise callbacks, where a missed rejection path would leave it counted forever.
 */

import assert from "node:assert/strict";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { rawServer } from "../_support/raw_server.ts";
import { test } from "../_support/test.ts";

const chat = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] });
const encoder = new TextEncoder();

/** Polls the endpoint's in-flight count until it is 0 (or gives up after ~2 s) and returns it. */
async function settledInFlight(inFlight: () => number): Promise<number> {
  for (let i = 0; i < 100 && inFlight() > 0; i++) await delay(20);
  return inFlight();
}

test("a client that leaves while its request waits for the upstream's head frees the endpoint", async () => {
  let arrived!: () => void;
  const requested = new Promise<void>((resolve) => arrived = resolve);
  await using upstream = rawServer(async (_conn, read) => {
    if (await read()) arrived();
    await read(); // never answers: waits for the proxy to close the connection
  });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(upstream.url, { name: "silent" })], ["num_retries: 0"]),
  );
  const load = proxy.services.balancer.load;
  const client = new AbortController();
  const asked = fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: chat,
    signal: client.signal,
  });
  await requested;
  assert.equal(load.inFlight("silent"), 1, "counted while it waits");
  client.abort();
  await asked.catch(() => {});
  assert.equal(await settledInFlight(() => load.inFlight("silent")), 0, "freed once the client left");
});

test("an answer whose head announces more than max_response_bytes: 502, and the endpoint is freed", async () => {
  await using upstream = rawServer(async (conn, read) => {
    if (!await read()) return;
    await conn.write(encoder.encode(
      "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{}",
    ));
    await read();
  });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(upstream.url, { name: "big" })], ["num_retries: 0", "max_response_bytes: 1000"]),
  );
  const response = await fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body: chat });
  const { error } = await response.json();
  assert.equal(response.status, 502);
  assert.equal(error.code, "upstream_response_too_large");
  assert.equal(await settledInFlight(() => proxy.services.balancer.load.inFlight("big")), 0);
});
