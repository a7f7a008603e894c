import assert from "node:assert/strict";
import OpenAI, { NotFoundError, toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";
import { generatedUpload } from "../_support/upload.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";

const jsonl = (ids: string[]) =>
  ids.map((id) =>
    JSON.stringify({
      custom_id: id,
      method: "POST",
      url: "/v1/chat/completions",
      body: { model: "gpt-test", messages: [{ role: "user", content: `hi ${id}` }] },
    })
  ).join("\n") + "\n";

/** Two OpenAI-style sims and one Azure-style (classic layout) behind one group; closed together. */
async function setup() {
  const east = await SimUpstream.start({ name: "east", quiet: true });
  const west = await SimUpstream.start({ name: "west", quiet: true });
  const azure = await SimUpstream.start({ name: "azure", quiet: true });
  const proxy = await startProxy(groupYaml([
    endpointYaml(east.url, { name: "east" }),
    endpointYaml(west.url, { name: "west" }),
    endpointYaml(azure.url, {
      name: "azure",
      extra: "          provider: azure\n          api_version: 2025-04-01-preview",
    }),
  ]));
  return {
    sims: { east, west, azure },
    proxy,
    client: new OpenAI({ baseURL: proxy.url + "/v1", apiKey: "client-key", maxRetries: 0 }),
    [Symbol.asyncDispose]: async () => {
      await proxy.close();
      await Promise.all([east.close(), west.close(), azure.close()]);
    },
  };
}

const sims = (ctx: { sims: Record<string, SimUpstream> }) => Object.values(ctx.sims);
/** The sim that made an id: ids read `prefix_name_tag_n`. */
const holder = (id: string) => id.split("_")[1];

test("files and batches: every call for an id goes to the endpoint that created it", async () => {
  await using ctx = await setup();
  const { client } = ctx;
  // Several uploads spread over the three endpoints; each is then reachable through the proxy.
  const files: OpenAI.FileObject[] = [];
  for (let i = 0; i < 6; i++) {
    files.push(
      await client.files.create({
        file: await toFile(new Blob([jsonl([`r${i}`])]), `in${i}.jsonl`),
        purpose: "batch",
      }),
    );
  }
  assert.equal(new Set(files.map((f) => holder(f.id))).size, 3, "uploads spread over the endpoints");
  for (const file of files) {
    assert.equal((await client.files.retrieve(file.id)).id, file.id);
    assert.equal(
      await (await client.files.content(file.id)).text(),
      jsonl([`r${file.filename.slice(2, 3)}`]),
    );
    // The batch goes where its input file is, and so do its retrieve and the output file.
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    assert.equal(holder(batch.id), holder(file.id));
    const done = await client.batches.retrieve(batch.id);
    assert.equal(done.status, "completed");
    const output = await (await client.files.content(done.output_file_id!)).text();
    assert.match(output, new RegExp(`\\[${holder(file.id)}\\] echo: hi r`));
  }
  // Azure got its upload in its own layout.
  const azureUpload = ctx.sims.azure.requests.find((r) => r.method === "POST" && r.path.endsWith("/files"));
  assert.equal(azureUpload?.path, "/openai/files");
  assert.equal(azureUpload?.auth, "api-key");
  // Lists merge the group's endpoints and name them.
  const { data, response } = await client.files.list().withResponse();
  assert.equal(data.data.length, 6 + 6);
  assert.deepEqual(response.headers.get("x-llmproxy-endpoint")!.split(",").sort(), ["azure", "east", "west"]);
  assert.equal((await client.batches.list()).data.length, 6);
  // Delete forgets it; a second delete is a clear 404 from the proxy.
  await client.files.delete(files[0].id);
  await assert.rejects(client.files.retrieve(files[0].id), NotFoundError);
  // A cancel goes to the holder too.
  const second = await client.batches.create({
    input_file_id: files[1].id,
    endpoint: "/v1/chat/completions",
    completion_window: "24h",
  });
  assert.equal((await client.batches.cancel(second.id)).status, "cancelling");
  for (const sim of sims(ctx)) {
    // (The deleted file was looked for on every endpoint.)
    const calls = sim.requests.filter((r) =>
      /\/(files|batches)\/[^/]+/.test(r.path) && !r.path.includes(files[0].id)
    );
    for (const r of calls) {
      const id = decodeURIComponent(
        r.path.split("/")[r.path.split("/").findIndex((p) => p === "files" || p === "batches") + 1],
      );
      assert.equal(holder(id), sim.name, `${r.method} ${r.path} went to ${sim.name}`);
    }
  }
});

test("files: an id the proxy never saw is found on the group's endpoints and remembered; unknown is a 404", async () => {
  await using ctx = await setup();
  const direct = new OpenAI({ baseURL: ctx.sims.west.url + "/v1", apiKey: "k", maxRetries: 0 });
  const file = await direct.files.create({
    file: await toFile(new Blob(["x"]), "x.txt"),
    purpose: "user_data",
  });
  assert.equal((await ctx.client.files.retrieve(file.id)).id, file.id);
  assert.deepEqual(await ctx.proxy.services.objects.holderOf(file.id), { endpoint: "west", owner: null });
  const error = await ctx.client.files.retrieve("file-nowhere").catch((e) => e);
  assert.ok(error instanceof NotFoundError);
  assert.match(error.message, /No file 'file-nowhere'/);
});

/** Groups `one` (the given endpoints) and `two` (one more sim); the header picks between them. */
function twoGroups(one: string[], two: string): string {
  return groupYaml(one, [], "one").replace(
    "general_settings:",
    `  - model_group: two\n    models:\n${two}\ngeneral_settings:`,
  );
}

test("files: the model group comes from the header; a streamed upload cannot fail over once sent", async () => {
  await using east = await SimUpstream.start({ name: "east", quiet: true });
  await using west = await SimUpstream.start({ name: "west", quiet: true });
  await using other = await SimUpstream.start({ name: "other", quiet: true });
  const yaml = twoGroups(
    [endpointYaml(east.url, { name: "east" }), endpointYaml(west.url, { name: "west" })],
    endpointYaml(other.url, { name: "other" }),
  );
  await using proxy = await startProxy(yaml);
  const client = new OpenAI({ baseURL: proxy.url + "/v1", apiKey: "k", maxRetries: 0 });
  const upload = () => toFile(new Blob(["data"]), "a.txt");
  const noGroup = await client.files.create({ file: await upload(), purpose: "user_data" }).catch((e) => e);
  assert.equal(noGroup.status, 400);
  assert.match(noGroup.message, /x-llmproxy-model-group/);
  const two = await client.files.create({ file: await upload(), purpose: "user_data" }, {
    headers: { "x-llmproxy-model-group": "two" },
  });
  assert.equal(holder(two.id), "other");
  assert.equal(
    other.last?.headers["x-llmproxy-model-group"],
    undefined,
    "the proxy's header is not forwarded",
  );
  // A large upload streams: once sent, an endpoint's 500 ends the request with a 502 that says it cannot be resent.
  east.reset();
  west.reset();
  east.always({ kind: "status", status: 500 });
  west.always({ kind: "status", status: 500 });
  const { body, type } = generatedUpload(6 * 1024 * 1024);
  const response = await fetch(proxy.url + "/v1/files", {
    method: "POST",
    headers: { "content-type": type, "x-llmproxy-model-group": "one", authorization: "Bearer k" },
    body,
  });
  assert.equal(response.status, 502);
  const error = (await response.json()).error;
  assert.equal(error.code, "upstream_failed");
  assert.match(error.message, /(east|west) failed \(HTTP 500\) after the request body had been streamed/);
  assert.equal(east.count("/files") + west.count("/files"), 1);
});

/**
 * A proxy of one group: `first` (weighted to be tried first) and `west`; `first` is a sim's URL or a closed port.
 * Small uploads are held whole, so any could be sent again: only one `first` surely did not take may be.
 */
async function firstThenWest(first: string, west: SimUpstream, settings: string[] = []) {
  const yaml = groupYaml([
    endpointYaml(first, { name: "first", weight: 1000, extra: "          timeout: 1" }),
    endpointYaml(west.url, { name: "west" }),
  ], settings);
  const proxy = await startProxy(yaml);
  const client = new OpenAI({ baseURL: proxy.url + "/v1", apiKey: "k", maxRetries: 0 });
  const upload = async () =>
    await client.files.create({ file: await toFile(new Blob(["data"]), "a.txt"), purpose: "user_data" })
      .withResponse().catch((error) => ({ error }));
  return { proxy, upload, [Symbol.asyncDispose]: () => proxy.close() };
}

test("files: a small upload moves on only when the endpoint surely did not take it (no duplicate file)", async () => {
  await using west = await SimUpstream.start({ name: "west", quiet: true });
  await using first = await SimUpstream.start({ name: "east", quiet: true });
  // Refused before any byte went (429, 401, 404), or no connection at all: the next endpoint makes the file.
  for (const status of [429, 401, 404]) {
    first.reset();
    west.reset();
    first.always({ kind: "status", status });
    await using ctx = await firstThenWest(first.url, west);
    const got = await ctx.upload();
    assert.ok("data" in got, `HTTP ${status}: ${"error" in got ? got.error : ""}`);
    assert.equal(holder(got.data.id), "west");
    assert.equal(got.response.headers.get("x-llmproxy-attempts"), "2");
    assert.equal(first.count("/files"), 1);
  }
  for (const client of ["http1", "fetch"]) {
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const url = `http://127.0.0.1:${(closed.addr as Deno.NetAddr).port}/v1`;
    closed.close();
    west.reset();
    await using ctx = await firstThenWest(url, west, [`upstream_client: ${client}`]);
    const got = await ctx.upload();
    assert.ok("data" in got, `${client}: ${"error" in got ? got.error : ""}`);
    assert.equal(holder(got.data.id), "west");
  }
  // A 5xx or a timeout: the endpoint may have made the file; the client is told, and no second one is made.
  for (
    const behaviour of [{ kind: "status", status: 500 }, { kind: "status", status: 503 }, {
      kind: "hang",
    }] as const
  ) {
    first.reset();
    west.reset();
    first.always(behaviour);
    await using ctx = await firstThenWest(first.url, west);
    const got = await ctx.upload();
    assert.ok("error" in got, JSON.stringify(behaviour));
    const error = got.error as InstanceType<typeof OpenAI.APIError>;
    assert.equal(error.status, behaviour.kind === "hang" ? 504 : 502);
    assert.match(
      error.message,
      /first failed \(.+\) after the upload had been sent to it; it may have made the file/,
    );
    assert.equal(first.count("/files"), 1);
    assert.equal(west.count("/files"), 0);
  }
});

test("files: a small upload moves on from a TLS endpoint whose certificate is refused (nothing of it went)", async () => {
  // The test CA's certificate, which the proxy is not told to trust: the handshake fails before any byte of the
  // request can go, so the upload is sent to the next endpoint (before, the http1 client shook hands only at its
  // first write, and the client got a 502 saying the file might exist).
  const tls = new URL("../_support/tls/", import.meta.url);
  const [cert, key] = await Promise.all(
    ["cert.pem", "key.pem"].map((name) => Deno.readTextFile(new URL(name, tls))),
  );
  let reached = 0;
  await using refused = Deno.serve({ hostname: "127.0.0.1", port: 0, cert, key, onListen: () => {} }, () => {
    reached++;
    return new Response(null, { status: 500 });
  });
  await using west = await SimUpstream.start({ name: "west", quiet: true });
  for (const client of ["http1", "fetch"]) {
    west.reset();
    const first = `https://127.0.0.1:${refused.addr.port}/v1`;
    await using ctx = await firstThenWest(first, west, [`upstream_client: ${client}`]);
    const got = await ctx.upload();
    assert.ok("data" in got, `${client}: ${"error" in got ? got.error : ""}`);
    assert.equal(holder(got.data.id), "west");
    assert.equal(got.response.headers.get("x-llmproxy-attempts"), "2");
  }
  assert.equal(reached, 0, "no request got through the refused handshake");
});

test({
  name: "files and batches: an id created through one instance is found by another on the same Redis",
  ignore: !hasRedis,
  fn: async () => {
    await using redis = await startRedis();
    await using east = await SimUpstream.start({ name: "east", quiet: true });
    await using west = await SimUpstream.start({ name: "west", quiet: true });
    const yaml = groupYaml(
      [endpointYaml(east.url, { name: "east" }), endpointYaml(west.url, { name: "west" })],
      [`redis_url: ${redis.url}`],
    );
    await using first = await startProxy(yaml);
    await using second = await startProxy(yaml);
    const via = (proxy: { url: string }) =>
      new OpenAI({ baseURL: proxy.url + "/v1", apiKey: "k", maxRetries: 0 });
    const files: OpenAI.FileObject[] = [];
    for (let i = 0; i < 4; i++) {
      files.push(
        await via(first).files.create({
          file: await toFile(new Blob([jsonl([`r${i}`])]), "in.jsonl"),
          purpose: "batch",
        }),
      );
    }
    assert.deepEqual(new Set(files.map((f) => holder(f.id))), new Set(["east", "west"]));
    east.requests.length = 0;
    west.requests.length = 0;
    for (const file of files) {
      assert.equal((await via(second).files.retrieve(file.id)).id, file.id);
      const batch = await via(second).batches.create({
        input_file_id: file.id,
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
      });
      assert.equal(holder(batch.id), holder(file.id));
      assert.equal((await via(first).batches.retrieve(batch.id)).status, "completed");
    }
    // Each call went straight to the holder: no instance had to search.
    for (const sim of [east, west]) {
      for (const r of sim.requests) {
        assert.ok(r.path.includes(`_${sim.name}_`) || r.method === "POST", `${r.method} ${r.path}`);
      }
    }
  },
});
