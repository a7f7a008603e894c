/**
 * A key's streamed chat whose upstream mixes its line ends (SSE allows CR, LF and CR-LF, in any mix): events that
 * end in an LF line then a CR-LF blank line, CR-LF then CR, LF then CR, several in one read, the usage chunk and
 * `[DONE]` in one read, a stream whose last byte is the CR that ends its usage event. The proxy asked for the usage
 * chunk, so it takes it out again: the client gets the stream it would get without the proxy, byte for byte (raw
 * fetch) and chunk for chunk (the `openai` client: no usage chunk with empty `choices`), and the usage is counted
 * once per stream (`/metrics`, the key's budget).
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { delay, endpointYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-team-eol-81c3";
const ADMIN = "sk-admin-eol-0d2f";
const encoder = new TextEncoder();

const delta = (content: string, usage: boolean) =>
  `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"${content}"}}]${
    usage ? ',"usage":null' : ""
  }}`;
const USAGE = 'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],' +
  '"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}';

/** One stream's reads as `[event or comment, blank line]` pairs per read; `usage` marks the usage chunk. */
type Read = readonly (readonly [string | { content: string } | "usage", string])[];

const STREAMS: readonly (readonly Read[])[] = [
  [
    [[{ content: "Hé" }, "\n\r\n"], [{ content: "llo" }, "\n\r\n"]], // LF, then a CR-LF blank line; two in one read
    [[{ content: " wor" }, "\r\n\r"], [{ content: "ld" }, "\r\n\r"]], // CR-LF then CR; its event ends with the next read
    [[{ content: "!" }, "\n\r"], [": keep-alive", "\n\r"]], // LF then CR
    [["usage", "\n\r\n"], ["data: [DONE]", "\n\r\n"]], // the usage chunk and [DONE] in one read
  ],
  [
    [[{ content: "a" }, "\r\n\n"], [{ content: "b" }, "\r\r\n"]], // CR-LF then LF; CR then CR-LF
    [[{ content: "c" }, "\n\r"], ["usage", "\r\n\r"]], // the stream's last byte is the CR that ends the usage event
  ],
];

function text(reads: readonly Read[], asked: boolean): string[] {
  return reads.map((read) =>
    read.map(([event, end]) => {
      if (event === "usage") return asked ? USAGE + end : "";
      return (typeof event === "string" ? event : delta(event.content, asked)) + end;
    }).join("")
  );
}

test("mixed CR, LF and CR-LF line ends: the client's stream without the usage chunk, the usage counted", {
  timeout: 20_000,
}, async () => {
  let calls = 0;
  const asked: boolean[] = [];
  await using upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const body = await request.json();
      asked.push(body.stream_options?.include_usage === true);
      const reads = text(STREAMS[calls++ % STREAMS.length], true);
      const stream = new ReadableStream<Uint8Array>({
        async start(controller) {
          for (const read of reads) {
            controller.enqueue(encoder.encode(read));
            await delay(10);
          }
          controller.close();
        },
      });
      return new Response(stream, { headers: { "content-type": "text/event-stream" } });
    },
  );
  const yaml = [
    "model_groups:",
    "  - model_group: gpt-test",
    "    models:",
    endpointYaml(`http://127.0.0.1:${upstream.addr.port}`, { name: "east" }),
    "general_settings:",
    "  cache: false",
    `  admin_keys: [${ADMIN}]`,
    "keys:",
    `  - {name: team-eol, key: ${KEY}, tokens_per_day: ${7 * 4}}`,
  ].join("\n") + "\n";
  await using proxy = await startProxy(yaml);
  const request = {
    model: "gpt-test",
    stream: true as const,
    messages: [{ role: "user" as const, content: "hi" }],
  };

  for (const reads of STREAMS) {
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}` },
      body: JSON.stringify(request),
    });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), text(reads, false).join(""));
    await delay(5); // usage is recorded once the stream has ended
  }

  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 });
  for (const [i, content] of ["Héllo world!", "abc"].entries()) {
    const chunks = [];
    for await (const chunk of await client.chat.completions.create(request)) chunks.push(chunk);
    assert.deepEqual(
      chunks.map((chunk) => [chunk.choices.length, "usage" in chunk]),
      chunks.map(() => [1, false]),
    );
    assert.equal(chunks.map((chunk) => chunk.choices[0]?.delta.content).join(""), content, `stream ${i}`);
    await delay(5);
  }
  assert.deepEqual(asked, [true, true, true, true]);

  // The `openai` client leaves at `[DONE]`: that reaches the proxy a moment later (later on a loaded machine).
  const admin = { headers: { authorization: `Bearer ${ADMIN}` } };
  let metrics = "";
  for (let tries = 0; tries < 40 && !/team-eol",[^}]*kind="output"\} 16\n/.test(metrics); tries++) {
    if (tries > 0) await delay(50);
    metrics = await (await fetch(`${proxy.url}/metrics`, admin)).text();
  }
  assert.match(metrics, /llmproxy_key_tokens_total\{key="team-eol",[^}]*kind="input"\} 12\n/);
  assert.match(metrics, /llmproxy_key_tokens_total\{key="team-eol",[^}]*kind="output"\} 16\n/);
  const refused = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}` },
    body: JSON.stringify(request),
  });
  assert.equal(refused.status, 429, "the budget is reached by the four streams' usage");
  assert.equal((await refused.json()).error.code, "insufficient_quota");
});
