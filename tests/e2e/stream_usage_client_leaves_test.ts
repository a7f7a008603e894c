/**
 * The `openai` client stops reading a stream at `[DONE]` and cancels the body. An upstream that ends its stream a
 * little after `[DONE]` (its last chunk of the HTTP body comes in a later read) has then reported its usage
 * before the client leaves: that usage is counted all the same, in the key's tokens (`/metrics`), the key's budget
 * and the endpoint's `tpm` budget (`/stats`). The same for a streamed transcription whose client stops reading at
 * its `transcript.text.done` event.
 */

import assert from "node:assert/strict";
import OpenAI, { toFile } from "openai";
import { type Clock, systemClock } from "../../src/core/clock.ts";
import { BUDGET_WINDOW_MS, windowEnd } from "../../src/ratelimit/budget.ts";
import { delay, endpointYaml } from "../_support/proxy.ts";
import { startProxy } from "../_support/proxy.ts";
import { lingeringUpstream } from "../_support/lingering_upstream.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-team-leaves-4a1e";
const ADMIN = "sk-admin-leaves-93b0";
const EVENTS = [
  'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":null}',
  'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],' +
  '"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}',
  "data: [DONE]",
].map((event) => event + "\n\n");

test("a client that leaves at [DONE] before the upstream's end: the usage it was sent is counted", {
  timeout: 20_000,
}, async () => {
  // The body's end comes later than its last event: 3 s, so that the client has left by then even on a loaded
  // machine (with 300 ms, two streams of a fresh proxy at load ~9 outlasted it: "the client left before the
  // upstream's end", 1 !== 0). Nothing waits for it: the client's leaving cancels the upstream's answer.
  await using upstream = lingeringUpstream([{ afterMs: 0, text: EVENTS.join("") }], 3000);
  // Placed 0.5 s into a budget window, so the budget's correction lands in the window it was charged in.
  const real = Date.now();
  const offset = windowEnd(real, BUDGET_WINDOW_MS) + 500 - real;
  const clock: Clock = { now: () => Date.now() + offset, sleep: systemClock.sleep };
  const yaml = [
    "model_groups:",
    "  - model_group: gpt-test",
    "    models:",
    endpointYaml(upstream.url, { name: "east", extra: "          tpm: 50000" }),
    "general_settings:",
    "  cache: false",
    `  admin_keys: [${ADMIN}]`,
    "keys:",
    `  - {name: team-leaves, key: ${KEY}, tokens_per_day: 14}`,
  ].join("\n") + "\n";
  await using proxy = await startProxy(yaml, { clock });
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 });
  for (let i = 0; i < 2; i++) {
    const chunks = [];
    const stream = await client.chat.completions.create({
      model: "gpt-test",
      stream: true,
      max_tokens: 100,
      messages: [{ role: "user", content: `hi ${i}` }],
    });
    for await (const chunk of stream) chunks.push(chunk);
    assert.deepEqual(chunks.map((chunk) => chunk.choices[0]?.delta.content), ["Hi"]);
  }
  await delay(50);
  assert.equal(upstream.ended, 0, "the client left before the upstream's end");

  const admin = { headers: { authorization: `Bearer ${ADMIN}` } };
  // The client's leaving reaches the proxy a moment after its last read (later on a loaded machine).
  let metrics = "";
  for (let tries = 0; tries < 40 && !/team-leaves",[^}]*kind="output"\} 8\n/.test(metrics); tries++) {
    if (tries > 0) await delay(50);
    metrics = await (await fetch(`${proxy.url}/metrics`, admin)).text();
  }
  assert.match(metrics, /llmproxy_key_tokens_total\{key="team-leaves",[^}]*kind="input"\} 6\n/);
  assert.match(metrics, /llmproxy_key_tokens_total\{key="team-leaves",[^}]*kind="output"\} 8\n/);
  const stats = await (await fetch(`${proxy.url}/stats`, admin)).json();
  const east = stats.endpoints.find((endpoint: { id: string }) => endpoint.id === "east");
  assert.deepEqual(east.budget.tpm, { used: 14, limit: 50000 });
  const refused = await client.chat.completions.create({
    model: "gpt-test",
    messages: [{ role: "user", content: "more" }],
  }).catch((error) => error);
  assert.equal(refused.status, 429, "the key's budget is spent by the two streams' usage");
});

test(
  "a streamed transcription whose client stops at transcript.text.done: the usage it was sent is counted",
  {
    timeout: 20_000,
  },
  async () => {
    await using upstream = lingeringUpstream([{
      afterMs: 0,
      text: 'data: {"type":"transcript.text.delta","delta":"Hi"}\n\n' +
        'data: {"type":"transcript.text.done","text":"Hi","usage":{"type":"tokens","input_tokens":5,' +
        '"output_tokens":2,"total_tokens":7}}\n\n',
    }], 300);
    const yaml = [
      "model_groups:",
      "  - model_group: transcribe",
      "    models:",
      endpointYaml(upstream.url, { name: "east", model: "gpt-4o-transcribe" }),
      "general_settings:",
      `  admin_keys: [${ADMIN}]`,
      "keys:",
      `  - {name: team-leaves, key: ${KEY}}`,
    ].join("\n") + "\n";
    await using proxy = await startProxy(yaml);
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const file = await toFile(new Uint8Array(1000), "talk.wav");
    const events = await client.audio.transcriptions.create({ file, model: "transcribe", stream: true });
    for await (const event of events) if (event.type === "transcript.text.done") break;

    let metrics = "";
    for (let tries = 0; tries < 40 && !/team-leaves",[^}]*kind="output"\} 2\n/.test(metrics); tries++) {
      if (tries > 0) await delay(50);
      metrics = await (await fetch(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } }))
        .text();
    }
    assert.match(metrics, /llmproxy_key_tokens_total\{key="team-leaves",[^}]*kind="input"\} 5\n/);
    assert.match(metrics, /llmproxy_key_tokens_total\{key="team-leaves",[^}]*kind="output"\} 2\n/);
  },
);
