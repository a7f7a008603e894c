/**
 * A realtime session may last an hour; the tokens each of its responses reports count against the key's `tpm` in
 * the minute they were spent, not in the minute the session opened (which has long passed by then).
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-realtime-tpm-3c9e";

test("realtime: a response's tokens count against tpm in the minute it ends, minutes into the session", {
  timeout: 20_000,
}, async () => {
  await using sim = await SimUpstream.start({ name: "east", quiet: true });
  const yaml = [
    "model_groups:",
    "  - model_group: voice",
    "    models:",
    endpointYaml(sim.url, { name: "east", model: "gpt-realtime" }),
    "  - model_group: chat",
    "    models:",
    endpointYaml(sim.url, { name: "chat" }),
    "general_settings:",
    "  cache: false",
    "keys:",
    `  - {name: team, key: ${KEY}, tpm: 25}`,
  ].join("\n") + "\n";
  // 5 s into a UTC minute, so the session opens and answers in known minutes.
  let offset = Math.ceil(Date.now() / 60_000) * 60_000 + 5_000 - Date.now();
  const clock = { now: () => Date.now() + offset, sleep: (ms: number) => delay(ms) };
  await using proxy = await startProxy(yaml, { clock });
  const socket = new WebSocket(proxy.url.replace(/^http/, "ws") + "/v1/realtime?model=voice", {
    headers: { authorization: `Bearer ${KEY}` },
  });
  const done: { response: { usage: { total_tokens: number } } }[] = [];
  socket.onmessage = (event) => {
    const parsed = JSON.parse(event.data);
    if (parsed.type === "response.done") done.push(parsed);
  };
  const closed = new Promise((resolve) => socket.onclose = resolve);
  try {
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error("the session was refused"));
    });
    // Three minutes into the session, one response.
    offset += 3 * 60_000;
    socket.send(JSON.stringify({ type: "response.create" }));
    for (let i = 0; i < 300 && done.length < 1; i++) await delay(10);
    assert.equal(done.length, 1);
    const spent = done[0].response.usage.total_tokens;
    await delay(200); // the charge goes out after the event
    // A chat estimated at 18 tokens (8 of prompt, 10 of max_tokens) fits in 25 alone, not on top of the response's.
    assert.ok(spent + 18 > 25, `the response reported ${spent} tokens`);
    const chat = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "chat", max_tokens: 10, messages: [{ role: "user", content: "" }] }),
    });
    const body = await chat.json();
    assert.equal(chat.status, 429, `the chat was let through: ${JSON.stringify(body).slice(0, 200)}`);
    assert.match(body.error.message, /tpm/);
  } finally {
    socket.close();
    await closed;
  }
});
