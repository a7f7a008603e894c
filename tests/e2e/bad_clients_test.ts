/**
 * Clients that misbehave at the HTTP level: huge headers (ours: 431 in the envelope; past Deno's own limit a bare
 * 400), a connection that never finishes its headers, and a body that stops half-way. None of them stops the
 * proxy from serving others.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const body = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "ok?" }] });

async function served(url: string): Promise<void> {
  const response = await fetch(`${url}/v1/chat/completions`, { method: "POST", body });
  assert.equal(response.status, 200);
  await response.body?.cancel();
}

/** Sends raw bytes on a new connection and returns the status line of the answer ("" when none came). */
async function raw(port: number, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(text)).catch(() => 0);
    const buffer = new Uint8Array(4096);
    const n = await conn.read(buffer).catch(() => null);
    return n === null ? "" : new TextDecoder().decode(buffer.subarray(0, n)).split("\r\n")[0];
  } finally {
    conn.close();
  }
}

test("huge headers: 431 in the OpenAI envelope; past Deno's limit the connection gets a bare 400", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)]));
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "x-big": "b".repeat(40_000) },
    body,
  });
  assert.equal(response.status, 431);
  const { error } = await response.json();
  assert.equal(error.code, "request_header_fields_too_large");
  assert.equal(error.type, "invalid_request_error");

  const many = Array.from({ length: 300 }, (_, i) => `x-h${i}: v\r\n`).join("");
  const port = Number(new URL(proxy.url).port);
  assert.match(
    await raw(port, `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n${many}\r\n`),
    /^HTTP\/1\.1 400/,
  );
  const huge = `GET /health HTTP/1.1\r\nhost: x\r\nx-huge: ${"h".repeat(200_000)}\r\n\r\n`;
  assert.match(await raw(port, huge), /^HTTP\/1\.1 400/);
  assert.equal(sim.count(), 0);
  await served(proxy.url);
});

test("a client that never finishes its headers, and one whose body stops half-way, do not block others", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)]));
  const port = Number(new URL(proxy.url).port);

  // Slow headers: Deno waits (it has no header timeout); the proxy serves everyone else meanwhile.
  const slow = await Deno.connect({ hostname: "127.0.0.1", port });
  await slow.write(new TextEncoder().encode("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"));
  // Half a body, then the client goes away.
  const half = await Deno.connect({ hostname: "127.0.0.1", port });
  await half.write(
    new TextEncoder().encode(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{"model":"gpt-test","mess`,
    ),
  );
  await delay(50);
  await Promise.all(Array.from({ length: 10 }, () => served(proxy.url)));
  half.close();
  slow.close();
  await delay(50);
  await served(proxy.url);
  assert.equal(sim.count(), 11, "the half body never went upstream");
  assert.ok(
    !proxy.logs.some((line) => JSON.parse(line).level === "error"),
    `an aborted upload is not an error of the proxy: ${proxy.logs.join("\n")}`,
  );
});
