/**
 * Files and batches belong to the key that created them, across instances: two proxy processes on one
 * redis-server, two team keys and an admin key in one model group. Another team's file or batch answers 404 in the
 * OpenAI envelope (read, content, delete, cancel, batching it), lists show a team only its own objects, a batch's
 * output file belongs to the batch's owner, and an admin key reaches everything without taking anything over.
 */

import assert from "node:assert/strict";
import OpenAI, { NotFoundError, toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, startProxy, startProxyProcess } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const TEAM_A = "sk-team-a-objects-3e1f";
const TEAM_B = "sk-team-b-objects-8c44";
const ADMIN = "sk-admin-objects-02d9";

const line = JSON.stringify({
  custom_id: "r1",
  method: "POST",
  url: "/v1/chat/completions",
  body: { model: "jobs", messages: [{ role: "user", content: "hi" }] },
}) + "\n";

const notFound = async (call: Promise<unknown>, what: string) => {
  const error = await call.then(() => undefined, (e) => e);
  assert.ok(error instanceof NotFoundError, `${what}: expected a 404, got ${error}`);
  return error;
};

test({
  name: "files and batches: another key's objects are a 404 on every instance; lists show only the caller's",
  ignore: !hasRedis,
  timeout: 60_000,
  fn: async () => {
    await using redis = await startRedis();
    await using east = await SimUpstream.start({ name: "east", quiet: true });
    await using west = await SimUpstream.start({ name: "west", quiet: true });
    const path = await Deno.makeTempFile({ suffix: ".yaml" });
    try {
      await Deno.writeTextFile(
        path,
        [
          "model_groups:",
          "  - model_group: jobs",
          "    models:",
          endpointYaml(east.url, { name: "east" }),
          endpointYaml(west.url, { name: "west" }),
          "general_settings:",
          "  cache: false",
          `  redis_url: ${redis.url}`,
          `  admin_keys: [${ADMIN}]`,
          "keys:",
          `  - {name: team-a, key: ${TEAM_A}}`,
          `  - {name: team-b, key: ${TEAM_B}}`,
        ].join("\n") + "\n",
      );
      const args = ["--config", path, "--port", "0", "--log-level", "warn"];
      await using one = await startProxyProcess(args);
      await using two = await startProxyProcess(args);
      const client = (proxy: { url: string }, key: string) =>
        new OpenAI({ baseURL: proxy.url + "/v1", apiKey: key, maxRetries: 0 });
      const a1 = client(one, TEAM_A), a2 = client(two, TEAM_A), b2 = client(two, TEAM_B);
      const admin = client(two, ADMIN);
      const upload = async () => await toFile(new TextEncoder().encode(line), "in.jsonl");

      const fileA = await a1.files.create({ file: await upload(), purpose: "batch" });
      const fileB = await b2.files.create({ file: await upload(), purpose: "batch" });

      // Team B, on the other instance, cannot reach team A's file in any way, even naming the group to search.
      await notFound(b2.files.retrieve(fileA.id), "retrieve");
      await notFound(
        b2.files.retrieve(fileA.id, { headers: { "x-llmproxy-model-group": "jobs" } }),
        "search",
      );
      await notFound(b2.files.content(fileA.id), "content");
      await notFound(b2.files.delete(fileA.id), "delete");
      await notFound(
        b2.batches.create({
          input_file_id: fileA.id,
          endpoint: "/v1/chat/completions",
          completion_window: "24h",
        }),
        "batch from it",
      );
      const raw = await fetch(`${two.url}/v1/files/${fileA.id}`, {
        headers: { authorization: `Bearer ${TEAM_B}` },
      });
      assert.equal(raw.status, 404);
      const envelope = await raw.json();
      assert.equal(envelope.error.code, "file_not_found");
      assert.equal(envelope.error.type, "invalid_request_error");
      assert.doesNotMatch(envelope.error.message, /team-a/, "the owner is not revealed");
      // Team A reaches it through either instance.
      assert.equal((await a2.files.retrieve(fileA.id)).id, fileA.id);
      assert.equal(await (await a2.files.content(fileA.id)).text(), line);

      // Lists: each team its own; the admin key all.
      const ids = async (c: OpenAI) => (await c.files.list()).data.map((f) => f.id).sort();
      assert.deepEqual(await ids(a2), [fileA.id]);
      assert.deepEqual(await ids(b2), [fileB.id]);
      assert.deepEqual(await ids(admin), [fileA.id, fileB.id].sort());
      // What the admin listed keeps its owner.
      await notFound(b2.files.retrieve(fileA.id), "after the admin's list");
      assert.deepEqual(await ids(a2), [fileA.id]);

      // A batch belongs to its creator, and so does its output file.
      const batch = await a1.batches.create({
        input_file_id: fileA.id,
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
      });
      await notFound(b2.batches.retrieve(batch.id), "batch retrieve");
      await notFound(b2.batches.cancel(batch.id), "batch cancel");
      assert.deepEqual((await b2.batches.list()).data, []);
      // The admin reads it first (the sim completes it then): its output file is still team A's.
      const done = await admin.batches.retrieve(batch.id);
      assert.equal(done.status, "completed");
      await notFound(b2.files.content(done.output_file_id!), "output content");
      assert.match(await (await a2.files.content(done.output_file_id!)).text(), /"custom_id":"r1"/);
      assert.deepEqual((await a2.batches.list()).data.map((b) => b.id), [batch.id]);

      // None of team B's refused calls reached an upstream; team A's delete does.
      const deletes = () => [...east.requests, ...west.requests].filter((r) => r.method === "DELETE").length;
      assert.equal(deletes(), 0);
      const batches = east.count("batches") + west.count("batches");
      assert.equal((await a2.files.delete(fileA.id)).deleted, true);
      assert.equal(deletes(), 1);
      await notFound(a2.files.retrieve(fileA.id), "deleted");
      assert.equal(east.count("batches") + west.count("batches"), batches);
    } finally {
      await Deno.remove(path);
    }
  },
});

test("a generation request that names another key's file is a 404 before anything goes upstream", {
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
    `  admin_keys: [${ADMIN}]`,
    "keys:",
    `  - {name: team-a, key: ${TEAM_A}, rpm: 100}`,
    `  - {name: team-b, key: ${TEAM_B}, rpm: 100}`,
  ].join("\n") + "\n";
  await using proxy = await startProxy(yaml);
  const client = (key: string) => new OpenAI({ baseURL: proxy.url + "/v1", apiKey: key, maxRetries: 0 });
  const a = client(TEAM_A), b = client(TEAM_B);
  const file = await a.files.create({
    file: await toFile(new TextEncoder().encode("%PDF-1.4"), "a.pdf"),
    purpose: "user_data",
  });
  const chat = (c: OpenAI) =>
    c.chat.completions.create({
      model: "jobs",
      messages: [{
        role: "user",
        content: [{ type: "text", text: "read it" }, { type: "file", file: { file_id: file.id } }],
      }],
    });
  const chats = () => sim.count("chat/completions");

  const refused = await notFound(chat(b), "chat");
  assert.equal(refused.code, "file_not_found");
  assert.equal(refused.param, "messages[0].content[1].file.file_id");
  await notFound(
    b.responses.create({
      model: "jobs",
      input: [{ role: "user", content: [{ type: "input_file", file_id: file.id }] }],
    }),
    "responses",
  );
  assert.equal(chats(), 0, "nothing went upstream");
  assert.equal(sim.count("/responses"), 0);
  // Its owner and the admin key may name it.
  await chat(a);
  await chat(client(ADMIN));
  assert.equal(chats(), 2);
  // A refused request charged nothing: team B's rpm is untouched.
  const fine = await b.chat.completions.create({ model: "jobs", messages: [{ role: "user", content: "hi" }] })
    .withResponse();
  assert.equal(fine.response.headers.get("x-ratelimit-remaining-requests"), "99");
});
