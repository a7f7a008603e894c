/**
 * Generation requests that name a file go to the endpoint that holds it (README "Files, batches, audio, images
 * and realtime", Affinity): the real proxy, two simulated endpoints in one group (a sim answers 400 for a file it
 * does not hold, as another resource would), the openai client.
 */

import assert from "node:assert/strict";
import OpenAI, { APIError, toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { slowLink } from "../_support/slow_link.ts";
import { test } from "../_support/test.ts";

/** The sim that made an id: ids read `prefix_name_tag_n`. */
const holderOf = (id: string) => id.split("_")[1];

async function setup(settings: string[] = [], tail = "", extra?: string) {
  const east = await SimUpstream.start({ name: "east", quiet: true });
  const west = await SimUpstream.start({ name: "west", quiet: true });
  const yaml = groupYaml(
    [endpointYaml(east.url, { name: "east", extra }), endpointYaml(west.url, { name: "west", extra })],
    settings,
  ) + tail;
  const proxy = await startProxy(yaml).catch(async (error) => {
    await Promise.all([east.close(), west.close()]);
    throw error;
  });
  return {
    sims: { east, west } as Record<string, SimUpstream>,
    proxy,
    yaml,
    client: (key = "k", url = proxy.url) => new OpenAI({ baseURL: url + "/v1", apiKey: key, maxRetries: 0 }),
    [Symbol.asyncDispose]: async () => {
      await proxy.close();
      await Promise.all([east.close(), west.close()]);
    },
  };
}

const upload = async (client: OpenAI, name = "doc.pdf") =>
  client.files.create({
    file: await toFile(new TextEncoder().encode("%PDF-1.4"), name),
    purpose: "user_data",
  });

const chatWith = (client: OpenAI, ...ids: string[]) =>
  client.chat.completions.create({
    model: "gpt-test",
    messages: [{
      role: "user",
      content: [
        { type: "text", text: "read it" },
        ...ids.map((file_id) => ({ type: "file" as const, file: { file_id } })),
      ],
    }],
  });

async function refusal(promise: Promise<unknown>): Promise<APIError> {
  const error = await promise.then(() => undefined, (e) => e);
  assert.ok(error instanceof APIError, `expected an API error, got ${error}`);
  return error;
}

/** Puts `sim`'s endpoint in a 30 s rate-limit cooldown through plain (balanced) chats; bounded. */
async function coolDown(client: OpenAI, sim: SimUpstream): Promise<void> {
  sim.next({ kind: "status", status: 429, headers: { "retry-after": "30" } });
  for (let i = 0; i < 10 && sim.count("chat/completions") === 0; i++) {
    await client.chat.completions.create({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] });
  }
  assert.equal(sim.count("chat/completions"), 1, "the holder took its 429");
}

test("files in generation requests: chats and Responses go to the file's endpoint, even while it cools down", async () => {
  await using ctx = await setup();
  const client = ctx.client();
  const file = await upload(client);
  const holder = ctx.sims[holderOf(file.id)];
  const other = ctx.sims[holderOf(file.id) === "east" ? "west" : "east"];
  await coolDown(client, holder);
  const before = other.count("chat/completions");
  for (let i = 0; i < 8; i++) {
    const chat = await chatWith(client, file.id);
    assert.match(chat.choices[0].message.content ?? "", new RegExp(`\\[${holder.name}\\]`));
  }
  const stream = await client.chat.completions.create({
    model: "gpt-test",
    stream: true,
    messages: [{ role: "user", content: [{ type: "file", file: { file_id: file.id } }] }],
  });
  for await (const _ of stream) { /* drained */ }
  assert.equal(holder.count("chat/completions"), 1 + 9, "every file chat at the holder");
  assert.equal(other.count("chat/completions"), before, "none at the other endpoint");

  for (let i = 0; i < 6; i++) {
    const response = await client.responses.create({
      model: "gpt-test",
      input: [{
        role: "user",
        content: [{ type: "input_text", text: "summarise" }, { type: "input_file", file_id: file.id }],
      }],
    });
    assert.equal(response.status, "completed");
  }
  assert.equal(holder.count("/responses"), 6);
  assert.equal(other.count("/responses"), 0);
});

test("files in generation requests: two endpoints' files, a follow-up elsewhere, a failing holder, unknown ids", async () => {
  await using ctx = await setup();
  const client = ctx.client();
  const files: OpenAI.FileObject[] = [];
  for (let i = 0; i < 6 && new Set(files.map((f) => holderOf(f.id))).size < 2; i++) {
    files.push(await upload(client));
  }
  const east = files.find((f) => holderOf(f.id) === "east")!;
  const west = files.find((f) => holderOf(f.id) === "west")!;
  const calls = () => ctx.sims.east.count("chat/completions") + ctx.sims.west.count("chat/completions");

  const conflict = await refusal(chatWith(client, east.id, west.id));
  assert.equal(conflict.status, 400);
  assert.equal(conflict.code, "conflicting_files");
  assert.equal(conflict.param, "messages[0].content[2].file.file_id");
  assert.match(conflict.message, new RegExp(`'${east.id}'.*on east and '${west.id}'.*on west`));
  assert.equal(calls(), 0, "nothing went upstream");

  // A conversation on west cannot read east's file.
  const first = await client.responses.create({
    model: "gpt-test",
    input: [{ role: "user", content: [{ type: "input_file", file_id: west.id }] }],
  });
  const elsewhere = await refusal(client.responses.create({
    model: "gpt-test",
    previous_response_id: first.id,
    input: [{ role: "user", content: [{ type: "input_file", file_id: east.id }] }],
  }));
  assert.equal(elsewhere.status, 400);
  assert.equal(elsewhere.code, "conflicting_files");

  // The holder fails: a clear error, no failover to an endpoint without the file.
  ctx.sims.east.next({ kind: "status", status: 500 });
  const failed = await refusal(chatWith(client, east.id));
  assert.equal(failed.status, 503);
  assert.match(failed.message, new RegExp(`file '${east.id}' \\(east\\) could not answer: HTTP 500`));
  assert.equal(ctx.sims.west.count("chat/completions"), 0);

  // An id the proxy never saw is looked for on each resource of the group, remembered where found.
  const direct = new OpenAI({ baseURL: ctx.sims.west.url + "/v1", apiKey: "sk-test-west", maxRetries: 0 });
  const outside = await upload(direct, "outside.pdf");
  const lookups = () =>
    ctx.sims.east.count(`files/${outside.id}`) + ctx.sims.west.count(`files/${outside.id}`);
  for (let i = 0; i < 4; i++) await chatWith(client, outside.id);
  assert.ok(lookups() >= 1 && lookups() <= 2, `searched once: ${lookups()} lookups`);
  assert.equal(ctx.sims.west.count("chat/completions"), 4);
  // Found nowhere: a 404 before any chat goes upstream.
  const chats = calls();
  const unknown = await refusal(chatWith(client, "file-unknown"));
  assert.equal(unknown.status, 404);
  assert.equal(unknown.code, "file_not_found");
  assert.equal(unknown.param, "messages[0].content[1].file.file_id");
  assert.equal(ctx.sims.east.count("files/file-unknown") + ctx.sims.west.count("files/file-unknown"), 2);
  assert.equal(calls(), chats);
});

test({
  name:
    "files in generation requests: a client key's file, uploaded through one instance, read through another on Redis",
  ignore: !hasRedis,
  fn: async () => {
    await using redis = await startRedis();
    await using ctx = await setup(
      [`redis_url: ${redis.url}`],
      "keys:\n  - {name: team-a, key: team-a-key}\n",
    );
    await using second = await startProxy(ctx.yaml);
    const file = await upload(ctx.client("team-a-key"));
    const holder = ctx.sims[holderOf(file.id)];
    const other = ctx.sims[holderOf(file.id) === "east" ? "west" : "east"];
    const viaSecond = ctx.client("team-a-key", second.url);
    for (let i = 0; i < 6; i++) await chatWith(viaSecond, file.id);
    assert.equal(holder.count("chat/completions"), 6);
    assert.equal(other.count("chat/completions"), 0);
  },
});

test({
  name:
    "files in generation requests: read through an instance whose Redis answers past its wait bound, a key's file is found, not a 404",
  ignore: !hasRedis,
  fn: async () => {
    // The second instance reaches Redis through a link slower than its 250 ms wait bound: a slow answer, not an
    // outage (a loaded machine, a Redis fork). Its own state has no record of a file made through the first.
    await using redis = await startRedis();
    await using link = slowLink(redis.port, 400);
    await using ctx = await setup(
      [`redis_url: ${redis.url}`],
      "keys:\n  - {name: team-a, key: team-a-key}\n",
    );
    await using second = await startProxy(ctx.yaml.replace(redis.url, `redis://127.0.0.1:${link.port}`));
    const file = await upload(ctx.client("team-a-key"));
    const chat = await chatWith(ctx.client("team-a-key", second.url), file.id);
    assert.match(chat.choices[0].message.content ?? "", new RegExp(`\\[${holderOf(file.id)}\\]`));
  },
});

test("files in generation requests: a file is read through another group's endpoint on its resource, else a 400", async () => {
  await using east = await SimUpstream.start({ name: "east", quiet: true });
  await using west = await SimUpstream.start({ name: "west", quiet: true });
  const yaml = groupYaml(
    [endpointYaml(east.url, { name: "east" }), endpointYaml(west.url, { name: "west" })],
  ).replace(
    "general_settings:",
    [
      "  - model_group: other",
      "    models:",
      endpointYaml(east.url, { name: "east-other" }),
      "general_settings:",
    ]
      .join("\n"),
  );
  await using proxy = await startProxy(yaml);
  const client = new OpenAI({
    baseURL: proxy.url + "/v1",
    apiKey: "k",
    maxRetries: 0,
    defaultHeaders: { "x-llmproxy-model-group": "gpt-test" },
  });
  const files: OpenAI.FileObject[] = [];
  for (let i = 0; i < 6 && new Set(files.map((f) => holderOf(f.id))).size < 2; i++) {
    files.push(await upload(client));
  }
  const onEast = files.find((f) => holderOf(f.id) === "east")!;
  const onWest = files.find((f) => holderOf(f.id) === "west")!;
  const other = (id: string) =>
    client.chat.completions.create({
      model: "other",
      messages: [{ role: "user", content: [{ type: "file", file: { file_id: id } }] }],
    });
  const chat = await other(onEast.id);
  assert.match(chat.choices[0].message.content ?? "", /\[east\]/);
  const refused = await refusal(other(onWest.id));
  assert.equal(refused.status, 400);
  assert.equal(refused.code, "file_not_in_model_group");
  assert.equal(west.count("chat/completions"), 0);
});

test("files in generation requests: the search decides only what it knows (one resource, a lookup that failed)", async () => {
  await using east = await SimUpstream.start({ name: "east", quiet: true });
  await using west = await SimUpstream.start({ name: "west", quiet: true });
  // west is the weight-0 fallback: a request the proxy does not pin goes to east.
  const yaml = groupYaml([
    endpointYaml(east.url, { name: "east" }),
    endpointYaml(west.url, { name: "west", weight: 0 }),
  ]).replace(
    "general_settings:",
    ["  - model_group: solo", "    models:", endpointYaml(east.url, { name: "solo" }), "general_settings:"]
      .join(
        "\n",
      ),
  );
  await using proxy = await startProxy(yaml);
  const client = new OpenAI({ baseURL: proxy.url + "/v1", apiKey: "k", maxRetries: 0 });
  const direct = new OpenAI({ baseURL: east.url + "/v1", apiKey: "sk-test-east", maxRetries: 0 });
  const chat = (model: string, id: string) =>
    client.chat.completions.create({
      model,
      messages: [{ role: "user", content: [{ type: "file", file: { file_id: id } }] }],
    });

  // A group of one resource: nothing to choose, nothing looked up; the upstream reads its own file.
  const solo = await upload(direct, "solo.pdf");
  const answer = await chat("solo", solo.id);
  assert.match(answer.choices[0].message.content ?? "", /\[east\]/);
  assert.equal(east.count(`files/${solo.id}`), 0, "no lookup in a group of one resource");

  // east refuses the lookup (403: a key allowed model calls only), west says 404: not a 404 to the client (a
  // refused or failed lookup is not "no such file"); the request is balanced as usual, reaches east, which holds
  // the file.
  const held = await upload(direct, "held.pdf");
  east.next({ kind: "status", status: 403 });
  const balanced = await chat("gpt-test", held.id);
  assert.match(balanced.choices[0].message.content ?? "", /\[east\]/);
  assert.equal(west.count(`files/${held.id}`), 1, "west was asked");
  assert.equal(west.count("chat/completions"), 0);
});

test("files routes: an id no resource holds is a 404; a lookup that failed is a 502, since the file may exist", async () => {
  await using ctx = await setup();
  const client = ctx.client();
  const missing = await refusal(client.files.retrieve("file-nowhere"));
  assert.equal(missing.status, 404);
  assert.equal(missing.code, "file_not_found");

  ctx.sims.east.next({ kind: "status", status: 500 });
  const failed = await refusal(client.files.retrieve("file-unsure"));
  assert.equal(failed.status, 502);
  assert.equal(failed.code, "upstream_failed");
  assert.match(failed.message, /Could not tell whether file 'file-unsure' exists/);
  assert.equal(ctx.sims.east.count("files/file-unsure") + ctx.sims.west.count("files/file-unsure"), 2);

  // Found on the resource that holds it, and remembered there.
  const direct = new OpenAI({ baseURL: ctx.sims.west.url + "/v1", apiKey: "sk-test-west", maxRetries: 0 });
  const outside = await upload(direct, "outside.pdf");
  for (let i = 0; i < 3; i++) assert.equal((await client.files.retrieve(outside.id)).id, outside.id);
  // The search asks east at most once; each retrieve goes to west.
  assert.ok(ctx.sims.east.count(`files/${outside.id}`) <= 1);
  assert.ok(ctx.sims.west.count(`files/${outside.id}`) >= 3);
});

test("files in generation requests: a chat sent to the file's endpoint is charged to its rpm/tpm budget", async () => {
  await using ctx = await setup([], "", "          rpm: 1000\n          tpm: 1000000");
  const client = ctx.client();
  /** Each endpoint's budget use in /stats, by sim name (endpoint ids end with the endpoint's name). */
  const budgets = async (): Promise<Record<string, { rpm: { used: number }; tpm: { used: number } }>> => {
    const stats = await (await fetch(`${ctx.proxy.url}/stats`)).json();
    const names = ["east", "west"];
    return Object.fromEntries(stats.endpoints.map((e: { id: string; budget: unknown }) => [
      names.find((name) => e.id.endsWith(name)),
      e.budget,
    ]));
  };
  const file = await upload(client); // balanced: charged like any request
  const holder = holderOf(file.id);
  const other = holder === "east" ? "west" : "east";
  const before = await budgets();
  await chatWith(client, file.id);
  await chatWith(client, file.id);
  const after = await budgets();
  assert.equal(
    after[holder].rpm.used - before[holder].rpm.used,
    2,
    "both chats counted against the holder's rpm",
  );
  assert.ok(after[holder].tpm.used > before[holder].tpm.used, "their tokens counted against its tpm");
  assert.equal(after[other].rpm.used, before[other].rpm.used, "nothing charged to the other endpoint");
});
