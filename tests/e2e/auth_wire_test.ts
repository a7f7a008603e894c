/**
 * Client keys and the request id as a client puts them on the wire, through the generation routes, which read a
 * served request's headers from the runtime's list as sent (http/served_request.ts, PairHeaders): names in any
 * case (Deno 2.9 keeps the client's), a header sent twice read as one value joined with ", " (as `Headers.get`).
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const CLIENT = "sk-client-wire-1";
const CLIENT_2 = "sk-client-wire-2";
const BODY = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] });

/** Sends a chat request with `lines` as its own headers on a raw connection; its status and head. */
async function send(proxy: RunningProxy, lines: string[]): Promise<{ status: number; head: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(proxy.url).port) });
  try {
    const head = [
      "POST /v1/chat/completions HTTP/1.1",
      "Host: x",
      ...lines,
      "Content-Type: application/json",
    ];
    await conn.write(
      new TextEncoder().encode(
        `${head.join("\r\n")}\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n${BODY}`,
      ),
    );
    const text = await new Response(conn.readable).text();
    return { status: Number(text.slice(9, 12)), head: text.slice(0, text.indexOf("\r\n\r\n")) };
  } finally {
    try {
      conn.close();
    } catch {
      // closed by reading to the end
    }
  }
}

test("keys and the request id as sent on the wire: any case, a header sent twice is one joined value", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url, { name: "a" })], [`api_keys: [${CLIENT}, ${CLIENT_2}]`]),
  );
  const cases: [string[], number][] = [
    [[`Authorization: Bearer ${CLIENT}`], 200],
    [[`AUTHORIZATION: Bearer ${CLIENT}`], 200],
    [[`authorization: BEARER ${CLIENT_2}`], 200],
    [[`API-KEY: ${CLIENT}`], 200],
    [["Authorization: Bearer sk-wrong", `Api-Key: ${CLIENT_2}`], 200],
    [["Authorization: Bearer sk-wrong"], 401],
    [[], 401],
    // Sent twice: one value, "Bearer A, Bearer B", which is no key (as Headers.get reads it).
    [[`Authorization: Bearer ${CLIENT}`, `authorization: Bearer ${CLIENT_2}`], 401],
    [[`api-key: ${CLIENT}`, `API-Key: ${CLIENT}`], 401],
  ];
  for (const [lines, status] of cases) {
    const answer = await send(proxy, lines);
    assert.equal(answer.status, status, `${JSON.stringify(lines)}:\n${answer.head}`);
  }
  assert.equal(sim.count(), cases.filter(([, status]) => status === 200).length);

  const named = await send(proxy, [`Authorization: Bearer ${CLIENT}`, "X-REQUEST-ID: wire-id-1"]);
  assert.match(named.head, /^x-request-id: wire-id-1$/im);
  assert.equal(sim.last?.headers["x-request-id"], "wire-id-1");
  const twice = await send(proxy, [
    `Authorization: Bearer ${CLIENT}`,
    "X-Request-Id: a1",
    "x-request-id: b2",
  ]);
  assert.equal(twice.status, 200);
  assert.equal(sim.last?.headers["x-request-id"], /^x-request-id: (.*)$/im.exec(twice.head)?.[1]);
  // No client key in anything the proxy logged.
  assert.ok(!proxy.logs.some((line) => line.includes(CLIENT) || line.includes(CLIENT_2)));
});
