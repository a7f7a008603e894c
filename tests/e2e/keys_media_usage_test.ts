/**
 * Audio, images, moderations and realtime count in a key's usage like chat: what the upstream reports (gpt-image
 * answers, GPT-4o transcriptions whole or streamed, realtime `response.done` events report tokens; whisper, speech
 * and moderations count as requests), in `/admin/usage`, `/metrics` and the key's budgets.
 */

import assert from "node:assert/strict";
import OpenAI, { RateLimitError, toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const TEAM = "sk-media-team-5b21";
const SMALL = "sk-media-small-77c0";
const ADMIN = "sk-media-admin-e0a4";

interface Row {
  key: string;
  model_group: string;
  requests: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  usd: number;
}

test("media and realtime usage is counted per key, in /admin/usage, /metrics and budgets", {
  timeout: 30_000,
}, async () => {
  await using sim = await SimUpstream.start({ name: "east", quiet: true, chunks: 3 });
  const group = (name: string, model: string) => [
    `  - model_group: ${name}`,
    "    models:",
    endpointYaml(sim.url, { name: `east-${name}`, model }),
  ];
  const yaml = [
    "model_groups:",
    ...group("images", "gpt-image-1"),
    ...group("transcribe", "gpt-4o-transcribe"),
    ...group("whisper", "whisper-1"),
    ...group("tts", "gpt-4o-mini-tts"),
    ...group("mod", "omni-moderation-latest"),
    ...group("voice", "gpt-realtime"),
    "general_settings:",
    "  cache: false",
    `  admin_keys: [${ADMIN}]`,
    "keys:",
    `  - {name: team, key: ${TEAM}}`,
    `  - {name: small, key: ${SMALL}, tokens_per_day: 3}`,
    "prices:",
    "  gpt-image-1: {input: 5, output: 40}",
    "  gpt-4o-transcribe: {input: 2.5, output: 10}",
  ].join("\n") + "\n";
  await using proxy = await startProxy(yaml);
  const client = new OpenAI({ baseURL: proxy.url + "/v1", apiKey: TEAM, maxRetries: 0 });
  const audio = await toFile(new Uint8Array(5000), "talk.wav");

  const image = await client.images.generate({ model: "images", prompt: "a cat", n: 2 });
  assert.deepEqual([image.usage?.input_tokens, image.usage?.output_tokens], [1, 2]);
  const heard = await client.audio.transcriptions.create({ file: audio, model: "transcribe" });
  const tokens = heard.usage as { input_tokens: number; output_tokens: number };
  assert.ok(tokens.input_tokens > 0 && tokens.output_tokens > 0);
  let streamed: { input_tokens: number; output_tokens: number } | undefined;
  const events = await client.audio.transcriptions.create({ file: audio, model: "transcribe", stream: true });
  for await (const event of events) {
    if (event.type === "transcript.text.done") streamed = event.usage as typeof streamed;
  }
  assert.ok(
    streamed && streamed.output_tokens > 0,
    "the streamed transcription reports its usage at the end",
  );
  await client.audio.transcriptions.create({ file: audio, model: "whisper" });
  await (await client.audio.speech.create({ model: "tts", input: "hello", voice: "alloy" })).arrayBuffer();
  await client.moderations.create({ model: "mod", input: "fine" });

  // A realtime session with two responses.
  const socket = new WebSocket(proxy.url.replace(/^http/, "ws") + "/v1/realtime?model=voice", {
    headers: { authorization: `Bearer ${TEAM}` },
  });
  const done: { response: { usage: { input_tokens: number; output_tokens: number } } }[] = [];
  socket.onmessage = (event) => {
    const parsed = JSON.parse(event.data);
    if (parsed.type === "response.done") done.push(parsed);
  };
  const closed = new Promise((resolve) => socket.onclose = resolve);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error("the session was refused"));
  });
  socket.send(JSON.stringify({ type: "response.create" }));
  socket.send(JSON.stringify({ type: "response.create" }));
  for (let i = 0; i < 200 && done.length < 2; i++) await delay(10);
  socket.close();
  await closed;
  assert.equal(done.length, 2);

  const admin = { authorization: `Bearer ${ADMIN}` };
  const usage = await (await fetch(`${proxy.url}/admin/usage?key=team`, { headers: admin })).json();
  const rows = new Map((usage.data as Row[]).map((row) => [row.model_group, row]));
  const row = (name: string) => rows.get(name)!;
  assert.deepEqual([row("images").requests, row("images").input_tokens, row("images").output_tokens], [
    1,
    1,
    2,
  ]);
  assert.equal(row("images").usd, (1 * 5 + 2 * 40) / 1e6, "priced from prices:");
  assert.equal(row("transcribe").requests, 2);
  assert.equal(row("transcribe").input_tokens, tokens.input_tokens + streamed.input_tokens);
  assert.equal(row("transcribe").output_tokens, tokens.output_tokens + streamed.output_tokens);
  for (const name of ["whisper", "tts", "mod"]) {
    assert.deepEqual([row(name).requests, row(name).input_tokens, row(name).output_tokens], [1, 0, 0], name);
  }
  const realtime = done.map((d) => d.response.usage);
  assert.equal(row("voice").requests, 2, "each realtime response counts as a request");
  assert.equal(row("voice").input_tokens, realtime[0].input_tokens + realtime[1].input_tokens);
  assert.equal(row("voice").cached_input_tokens, 8, "the Realtime API's input_token_details.cached_tokens");
  assert.equal(row("voice").output_tokens, realtime[0].output_tokens + realtime[1].output_tokens);

  const metrics = await (await fetch(`${proxy.url}/metrics`, { headers: admin })).text();
  assert.match(metrics, /llmproxy_key_requests_total\{key="team",group="images",endpoint="east-images"\} 1/);
  assert.match(
    metrics,
    /llmproxy_key_tokens_total\{key="team",group="images",endpoint="east-images",kind="output"\} 2/,
  );
  assert.match(metrics, /llmproxy_key_requests_total\{key="team",group="mod",endpoint="east-mod"\} 1/);
  assert.match(metrics, /llmproxy_key_requests_total\{key="team",group="voice",endpoint="east-voice"\} 2/);
  assert.match(metrics, /llmproxy_key_cost_usd_total\{key="team",group="images",endpoint="east-images"\} /);

  // The tokens an image reports are charged to the key's budget: 3 of 3 spent, the next image is refused.
  const small = new OpenAI({ baseURL: proxy.url + "/v1", apiKey: SMALL, maxRetries: 0 });
  await small.images.generate({ model: "images", prompt: "a dog", n: 2 });
  let over: unknown;
  for (let i = 0; i < 5 && !(over instanceof RateLimitError); i++) {
    await delay(100); // charged just after the answer, off its path
    over = await small.images.generate({ model: "images", prompt: "again" }).catch((e) => e);
  }
  assert.ok(over instanceof RateLimitError, `expected a 429, got ${over}`);
  assert.equal(over.code, "insufficient_quota");
});
