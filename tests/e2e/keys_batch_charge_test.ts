/**
 * Creating a batch is charged to the key like an upload: one request against rpm, refused once a budget is spent
 * (a batch spends upstream tokens later, out of the proxy's sight, so it must not start on a spent budget). A
 * realtime session is refused on a spent budget too, with the same 429 `insufficient_quota` on its handshake.
 */

import assert from "node:assert/strict";
import OpenAI, { RateLimitError, toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, startProxy } from "../_support/proxy.ts";
import { minuteClock } from "../_support/minute_clock.ts";
import { test } from "../_support/test.ts";
import { refusedUpgrade } from "../_support/upgrade.ts";

const RPM_KEY = "sk-batch-rpm-6a02";
const BUDGET_KEY = "sk-batch-budget-9d7e";

const line = JSON.stringify({
  custom_id: "r1",
  method: "POST",
  url: "/v1/chat/completions",
  body: { model: "jobs", messages: [{ role: "user", content: "hi" }] },
}) + "\n";

test("batches.create counts against rpm and is refused on a spent budget; so is a realtime session", {
  timeout: 20_000,
}, async () => {
  await using sim = await SimUpstream.start({ name: "east", quiet: true });
  const yaml = [
    "model_groups:",
    "  - model_group: jobs",
    "    models:",
    endpointYaml(sim.url, { name: "east" }),
    "general_settings:",
    "  cache: false",
    "keys:",
    `  - {name: rpm-team, key: ${RPM_KEY}, rpm: 2}`,
    `  - {name: budget-team, key: ${BUDGET_KEY}, tokens_per_day: 5}`,
  ].join("\n") + "\n";
  await using proxy = await startProxy(yaml, { clock: minuteClock() });
  const client = (key: string) => new OpenAI({ baseURL: proxy.url + "/v1", apiKey: key, maxRetries: 0 });
  const batchOf = (c: OpenAI, id: string) =>
    c.batches.create({ input_file_id: id, endpoint: "/v1/chat/completions", completion_window: "24h" });

  // rpm 2: the upload is one, the batch two; the second batch is over.
  const limited = client(RPM_KEY);
  const file = await limited.files.create({
    file: await toFile(new TextEncoder().encode(line), "a.jsonl"),
    purpose: "batch",
  });
  const made = await batchOf(limited, file.id).withResponse();
  assert.equal(made.response.headers.get("x-ratelimit-remaining-requests"), "0");
  const refused = await batchOf(limited, file.id).catch((e) => e);
  assert.ok(refused instanceof RateLimitError, `expected a 429, got ${refused}`);
  assert.equal(refused.code, "rate_limit_exceeded");
  assert.match(refused.message, /rpm \(2 requests per minute\)/);
  assert.ok(Number(refused.headers?.get("retry-after")) >= 1);
  // Reading the batch is not charged.
  assert.equal((await limited.batches.retrieve(made.data.id)).id, made.data.id);
  const created = () => sim.requests.filter((r) => r.method === "POST" && r.path === "/v1/batches").length;
  assert.equal(created(), 1, "the refused batch never reached the upstream");

  // tokens_per_day 5: one chat spends more than that; then no batch and no realtime session starts.
  const spender = client(BUDGET_KEY);
  const input = await spender.files.create({
    file: await toFile(new TextEncoder().encode(line), "b.jsonl"),
    purpose: "batch",
  });
  await spender.chat.completions.create({
    model: "jobs",
    messages: [{ role: "user", content: "spend the budget" }],
  });
  let over: unknown;
  for (let i = 0; i < 5 && !(over instanceof RateLimitError); i++) {
    await delay(100); // the budget is charged just after the answer, off its path
    over = await batchOf(spender, input.id).catch((e) => e);
  }
  assert.ok(over instanceof RateLimitError, `expected a 429, got ${over}`);
  assert.equal(over.code, "insufficient_quota");
  assert.match(over.message, /tokens_per_day/);
  const upgrade = await fetch(proxy.url + "/v1/realtime?model=jobs", {
    headers: { authorization: `Bearer ${BUDGET_KEY}` },
  });
  assert.equal(upgrade.status, 426, "not an upgrade: told so (the budget is checked at an upgrade)");
  await upgrade.body?.cancel();
  const session = await refusedUpgrade(proxy.url, "/v1/realtime?model=jobs", {
    authorization: `Bearer ${BUDGET_KEY}`,
  });
  assert.equal(session.status, 429, "a realtime session on a spent budget is refused at its handshake");
  assert.equal(session.body.error.code, "insufficient_quota");
  assert.equal(sim.count("/realtime"), 0);
});
