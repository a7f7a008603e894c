/**
 * `files.list` and `batches.list` over a group of two resources, paged by the openai client as it pages: `after`
 * is the last id of the page before. Every object comes exactly once, a page holds at most `limit`, and a client
 * key's pages (its `after` ones too) hold only its own objects.
 */

import assert from "node:assert/strict";
import OpenAI, { toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

async function setup(lenientLists = false) {
  const east = await SimUpstream.start({ name: "east", quiet: true, lenientLists });
  const west = await SimUpstream.start({ name: "west", quiet: true, lenientLists });
  const yaml = groupYaml(
    [endpointYaml(east.url, { name: "east" }), endpointYaml(west.url, { name: "west" })],
    ["admin_keys: [sk-admin-lists]"],
  ) + "keys:\n  - {name: team-a, key: sk-team-a-lists}\n  - {name: team-b, key: sk-team-b-lists}\n";
  const proxy = await startProxy(yaml, { logLevel: "error" });
  const client = (apiKey: string) => new OpenAI({ baseURL: proxy.url + "/v1", apiKey, maxRetries: 0 });
  return {
    proxy,
    east,
    west,
    a: client("sk-team-a-lists"),
    b: client("sk-team-b-lists"),
    admin: client("sk-admin-lists"),
    [Symbol.asyncDispose]: async () => {
      await proxy.close();
      await Promise.all([east.close(), west.close()]);
    },
  };
}

const upload = async (client: OpenAI, name: string) =>
  (await client.files.create({ file: await toFile(new Blob([`{"n":"${name}"}\n`]), name), purpose: "batch" }))
    .id;

/** Every page the client's auto-pagination reads, as the ids of each. */
async function pages(list: Promise<OpenAI.FileObjectsPage> | OpenAI.FileObjectsPage): Promise<string[][]> {
  const out: string[][] = [];
  for (
    let page: OpenAI.FileObjectsPage | null = await list;
    page;
    page = page.hasNextPage() ? await page.getNextPage() : null
  ) {
    out.push(page.data.map((file) => file.id));
    assert.ok(out.length < 50, "paging ends");
  }
  return out;
}

test("files.list paged by the client over two resources: every file once, at most `limit` a page", async () => {
  await using ctx = await setup();
  const ids: string[] = [];
  for (let i = 0; i < 9; i++) ids.push(await upload(ctx.admin, `f${i}.jsonl`));
  assert.equal(new Set(ids.map((id) => id.split("_")[1])).size, 2, "uploads on both resources");
  for (const limit of [2, 4, 100]) {
    const seen = await pages(ctx.admin.files.list({ limit }));
    for (const page of seen) assert.ok(page.length <= limit, `a page of ${page.length} for limit ${limit}`);
    assert.deepEqual(seen.flat().toSorted(), ids.toSorted(), `limit ${limit}: every file once`);
  }
  // Oldest first too.
  assert.deepEqual(
    (await pages(ctx.admin.files.list({ limit: 3, order: "asc" }))).flat().toSorted(),
    ids.toSorted(),
  );
});

test("a client key's list pages, `after` ones included, hold only its own files, and all of them", async () => {
  await using ctx = await setup();
  const mine: string[] = [];
  for (let i = 0; i < 10; i++) {
    const id = await upload(i % 3 === 0 ? ctx.a : ctx.b, `${i % 3 === 0 ? "a" : "b"}${i}.jsonl`);
    if (i % 3 === 0) mine.push(id);
  }
  const seen = await pages(ctx.a.files.list({ limit: 1 }));
  assert.deepEqual(seen.flat().toSorted(), mine.toSorted(), "team A's pages: its own files, each once");
  // An `after` the proxy did not hand out (team A's newest, asked by hand): still only team A's files.
  for (const order of ["desc", "asc"] as const) {
    const page = await ctx.a.files.list({ after: mine.at(order === "desc" ? -1 : 0), order });
    for (const file of page.data) {
      assert.ok(mine.includes(file.id), `${file.id} (${file.filename}) is not team A's`);
    }
  }
});

test("a client key's file behind many of another key's is still listed, a page of one at a time", async () => {
  await using ctx = await setup();
  const mine = await upload(ctx.a, "a.jsonl");
  for (let i = 0; i < 12; i++) await upload(ctx.b, `b${i}.jsonl`);
  // Before, four rounds of one object a resource came up empty: the SDK got an empty page and stopped there.
  assert.deepEqual((await pages(ctx.a.files.list({ limit: 1 }))).flat(), [mine]);
});

test("list cursor records: one per caller, order, purpose and object, whatever `order` the client sends", async () => {
  await using ctx = await setup(true);
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) ids.push(await upload(ctx.admin, `p${i}.jsonl`));
  // A lenient upstream takes any order but `asc` as newest first.
  for (let i = 0; i < 20; i++) {
    const answer = await fetch(`${ctx.proxy.url}/v1/files?limit=1&order=newest-${i}`, {
      headers: { authorization: "Bearer sk-admin-lists" },
    });
    assert.equal(answer.status, 200);
    assert.equal((await answer.json()).data.length, 1);
  }
  assert.equal((await ctx.proxy.services.store.usage!("lst:")).entries, 1, "one record for one object");
  // A filtered list ending on the same object as an unfiltered one keeps going on on every resource.
  const filtered = ctx.admin.files.list({ limit: 1, purpose: "batch" });
  const plain = await ctx.admin.files.list({ limit: 1 });
  assert.deepEqual((await pages(filtered)).flat().toSorted(), ids.toSorted());
  assert.deepEqual((await pages(plain)).flat().toSorted(), ids.toSorted());
});

test("a resource that ignores `after` and `limit` (an older API) still gives each file once", async () => {
  await using east = await SimUpstream.start({ name: "east", quiet: true });
  // Always every file it has, newest first, whatever the query asks.
  const old = Array.from({ length: 5 }, (_, i) => ({
    id: `file-old-${i}`,
    object: "file",
    bytes: 1,
    created_at: 1_700_000_000 - i,
    filename: `old${i}.jsonl`,
    purpose: "batch",
  }));
  await using legacy = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => Response.json({ object: "list", data: old, has_more: false }),
  );
  await using proxy = await startProxy(
    groupYaml([
      endpointYaml(east.url, { name: "east" }),
      // Weight 0: uploads go to east; lists ask both.
      endpointYaml(`http://127.0.0.1:${legacy.addr.port}`, { name: "legacy", weight: 0 }),
    ]),
    { logLevel: "error" },
  );
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
  const ids = [...old.map((file) => file.id)];
  for (let i = 0; i < 3; i++) ids.push(await upload(client, `new${i}.jsonl`));
  for (const limit of [2, 3]) {
    const seen = (await pages(client.files.list({ limit }))).flat();
    assert.deepEqual(seen.toSorted(), ids.toSorted(), `limit ${limit}: every file once`);
  }
});

test("a list query the upstreams refuse (a `limit` above their most, an unknown `order`), or no page size, is a 400", async () => {
  await using ctx = await setup();
  const refused = async (list: () => Promise<unknown>) => await list().then(() => null, (error) => error);
  for (const client of [ctx.a, ctx.admin]) {
    const cases = [
      [await refused(() => client.files.list({ limit: 10_001 })), "limit"],
      [await refused(() => client.batches.list({ limit: 101 })), "limit"],
      [await refused(() => client.files.list({ order: "sideways" as "asc" })), "order"],
      // One the proxy sees is no page size, before any upstream is asked.
      [await refused(() => client.files.list({ limit: 0 })), "limit"],
      [await refused(() => client.batches.list({ limit: 2.5 })), "limit"],
    ] as const;
    for (const [error, param] of cases) {
      assert.ok(error instanceof OpenAI.BadRequestError, String(error));
      assert.equal(error.status, 400);
      assert.equal(error.type, "invalid_request_error");
      assert.equal(error.param, param);
    }
  }
  const text = await fetch(`${ctx.proxy.url}/v1/files?limit=ten`, {
    headers: { authorization: "Bearer sk-admin-lists" },
  });
  assert.equal(text.status, 400);
  assert.equal((await text.json()).error.param, "limit");
  // Within the bounds, the same lists answer.
  assert.deepEqual((await ctx.a.batches.list({ limit: 100 })).data, []);
});

test("an id no resource holds is a 404 whose `param` is what the client called it", async () => {
  await using ctx = await setup();
  for (const client of [ctx.a, ctx.admin]) {
    const batch = await client.batches.create({
      input_file_id: "file-nowhere",
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    }).catch((error) => error);
    assert.ok(batch instanceof OpenAI.NotFoundError, String(batch));
    assert.equal(batch.param, "input_file_id");
    const page = await client.files.list({ after: "file-nowhere" }).catch((error) => error);
    assert.ok(page instanceof OpenAI.NotFoundError, String(page));
    assert.equal(page.param, "after");
    const file = await client.files.retrieve("file-nowhere").catch((error) => error);
    assert.equal(file.param, "file_id");
  }
});

test("one resource refusing every list (its own fault) does not refuse the list: the others' objects come", async () => {
  await using ctx = await setup();
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push(await upload(ctx.admin, `r${i}.jsonl`));
  const wests = ids.filter((id) => id.includes("_west_"));
  assert.ok(wests.length > 0 && wests.length < ids.length, "uploads on both resources");
  ctx.east.always({ kind: "status", status: 400 });
  const answer = await fetch(`${ctx.proxy.url}/v1/files?limit=100`, {
    headers: { authorization: "Bearer sk-admin-lists" },
  });
  assert.equal(answer.status, 200);
  assert.equal(answer.headers.get("x-llmproxy-list-failed"), "east");
  const listed = (await answer.json()).data.map((file: { id: string }) => file.id);
  assert.deepEqual(listed.toSorted(), wests.toSorted());
});
