/**
 * Only what the proxy means to send reaches an upstream (an allow-list of client headers, the route's documented
 * query parameters, the endpoint's own `api-version` and organization), and nothing secret comes back: the
 * endpoint's key is masked wherever an upstream echoes it, in headers, whole bodies and streams.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const chat = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] });

test("client headers: an allow-list; organization and project only from the endpoint's config", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  const extra = "          organization: org-config";
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url, { extra })]));
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "openai-organization": "org-client",
      "openai-project": "proj-client",
      connection: "keep-alive, x-stainless-os, user-agent",
      "user-agent": "named-in-connection",
      "x-stainless-os": "Linux",
      "x-stainless-lang": "js",
      "x-original-url": "/admin",
      "x-http-method-override": "DELETE",
      via: "1.1 evil",
      "x-forwarded-host": "evil.example",
      cookie: "session=1",
      "openai-beta": "assistants=v2",
    },
    body: chat,
  });
  assert.equal(response.status, 200);
  await response.body?.cancel();
  const headers = sim.last!.headers;
  assert.equal(headers["openai-organization"], "org-config");
  assert.equal(headers["openai-project"], undefined);
  for (const name of ["user-agent", "x-stainless-os", "x-original-url", "x-http-method-override", "via"]) {
    assert.equal(headers[name], undefined, `${name} must not reach the upstream`);
  }
  assert.equal(headers["x-forwarded-host"], undefined);
  assert.equal(headers["cookie"], undefined);
  assert.equal(headers["x-stainless-lang"], "js");
  assert.equal(headers["openai-beta"], "assistants=v2");
  assert.equal(headers["authorization"], "Bearer sk-test-key");
});

test("client headers as sent on the wire: any case, a header twice, hop-by-hop names in any case", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)]));
  const { hostname, port } = new URL(proxy.url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    const head = [
      "POST /v1/chat/completions HTTP/1.1",
      `Host: ${hostname}:${port}`,
      "Content-Type: application/json",
      `Content-Length: ${new TextEncoder().encode(chat).length}`,
      "Connection: close, X-Stainless-OS",
      "X-Stainless-Lang: js",
      "X-Stainless-OS: Linux",
      "Accept: application/json",
      "ACCEPT: text/plain",
      "X-Original-URL: /admin",
      "User-Agent: raw",
    ].join("\r\n");
    await conn.write(new TextEncoder().encode(`${head}\r\n\r\n${chat}`));
    const answer = new TextDecoder().decode(await new Response(conn.readable).bytes());
    assert.match(answer, /^HTTP\/1\.1 200/);
  } finally {
    try {
      conn.close();
    } catch {
      // closed by reading to the end
    }
  }
  const headers = sim.last!.headers;
  assert.equal(headers["x-stainless-lang"], "js");
  assert.equal(headers["x-stainless-os"], undefined, "named in Connection: hop-by-hop");
  assert.equal(headers["accept"], "application/json, text/plain");
  assert.equal(headers["user-agent"], "raw");
  assert.equal(headers["x-original-url"], undefined);
});

test("query: only a route's documented parameters pass; api-version is always the endpoint's", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  const extra = ["          provider: azure", "          api_version: 2025-04-01-preview"].join("\n");
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url, { extra })]));
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused" });
  const created = await client.responses.create({ model: "gpt-test", input: "hi" });
  const evil = "api-version=2099-evil&include%5B%5D=message.output_text.logprobs&debug=1&stream=false";
  const item = await fetch(`${proxy.url}/v1/responses/${created.id}?${evil}`);
  assert.equal(item.status, 200);
  await item.body?.cancel();
  const get = sim.last!;
  const query = new URLSearchParams(get.search);
  assert.deepEqual(query.getAll("api-version"), ["2025-04-01-preview"]);
  assert.deepEqual(query.getAll("include[]"), ["message.output_text.logprobs"]);
  assert.equal(query.get("stream"), "false");
  assert.equal(query.get("debug"), null);

  const items = await fetch(`${proxy.url}/v1/responses/${created.id}/input_items?limit=5&stream=true&x=1`);
  assert.equal(items.status, 200);
  await items.body?.cancel();
  const listed = new URLSearchParams(sim.last!.search);
  assert.deepEqual([...listed.keys()].sort(), ["api-version", "limit"]);
});

const KEY = "sk-live-0123456789abcdefSECRET";

/** An upstream that echoes the key it was sent, in a header and in the body, whole or split across chunks. */
function echoingUpstream(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const sent = request.headers.get("authorization") ?? "";
    const body = await request.json();
    const echo = { "x-debug-auth": sent };
    if (body.messages[0].content === "bad") {
      const error = { message: `Invalid request: you sent '${sent}'`, type: "invalid_request_error" };
      return Response.json({ error }, { status: 400, headers: echo });
    }
    if (!body.stream) {
      const message = { role: "assistant", content: `your key is ${KEY}` };
      return Response.json({ id: "c1", object: "chat.completion", choices: [{ index: 0, message }] }, {
        headers: echo,
      });
    }
    const frame =
      `data: {"choices":[{"index":0,"delta":{"content":"key ${KEY} again"}}]}\n\ndata: [DONE]\n\n`;
    const bytes = new TextEncoder().encode(frame);
    const cut = frame.indexOf(KEY) + 7; // the key split between two chunks
    return new Response(
      new ReadableStream({
        async start(controller) {
          controller.enqueue(bytes.subarray(0, cut));
          await new Promise((resolve) => setTimeout(resolve, 30));
          controller.enqueue(bytes.subarray(cut));
          controller.close();
        },
      }),
      { headers: { "content-type": "text/event-stream", ...echo } },
    );
  });
}

for (const client of ["http1", "fetch"]) {
  test(`the endpoint's key never comes back from an upstream (${client} client)`, async () => {
    await using upstream = echoingUpstream();
    const base = `http://127.0.0.1:${upstream.addr.port}`;
    const extra = `          api_key: ${KEY}`;
    const yaml = groupYaml([endpointYaml(base, { extra }).replace(/^ +api_key: sk-test-key\n/m, "")], [
      `upstream_client: ${client}`,
    ]);
    await using proxy = await startProxy(yaml);
    const seen: string[] = [];
    for (const [content, stream] of [["bad", false], ["ok", false], ["ok", true]] as const) {
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-test", stream, messages: [{ role: "user", content }] }),
      });
      const text = await response.text();
      seen.push(`${response.status} ${JSON.stringify([...response.headers])} ${text}`);
      assert.equal(response.headers.get("x-debug-auth"), `Bearer ${"*".repeat(KEY.length)}`);
    }
    const all = seen.join("\n");
    assert.ok(!all.includes("0123456789abcdef"), `the key came back: ${all}`);
    assert.match(seen[0], /^400 .*you sent 'Bearer \*{30}'/);
    assert.match(seen[1], /^200 .*your key is \*{30}/);
    assert.match(seen[2], /^200 .*key \*{30} again/);
  });
}
