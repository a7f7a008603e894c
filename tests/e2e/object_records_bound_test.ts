/**
 * The memory store keeps files' and batches' records (30 days) bounded by `object_records_max_entries` and list
 * cursors (an hour) by `list_cursors_max_entries`, least recently used out first: a client making objects and
 * paging lists cannot grow the process without limit, what it uses survives (its file in use, the cursor of the
 * page it reads), and paging never pushes out a file's record. The real proxy with no Redis, a simulated
 * upstream, the openai client with a client key.
 */

import assert from "node:assert/strict";
import OpenAI, { APIError, toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const BOUND = 8;

test({
  name: "memory store: file records and list cursors stay within their bounds; the ones in use survive",
  timeout: 60_000,
  async fn() {
    await using sim = await SimUpstream.start({ name: "east", quiet: true });
    const yaml = groupYaml([endpointYaml(sim.url, { name: "east" })], [
      `object_records_max_entries: ${BOUND}`,
      `list_cursors_max_entries: ${BOUND}`,
    ]) +
      "keys:\n  - {name: team-a, key: team-a-key}\n";
    await using proxy = await startProxy(yaml);
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "team-a-key", maxRetries: 0 });
    const upload = async (name: string) =>
      client.files.create({
        file: await toFile(new TextEncoder().encode("%PDF-1.4"), name),
        purpose: "user_data",
      });

    const kept = await upload("kept.pdf");
    const others = [];
    for (let i = 0; i < 3 * BOUND; i++) {
      others.push(await upload(`other-${i}.pdf`));
      // Used all along: it stays.
      assert.equal((await client.files.retrieve(kept.id)).id, kept.id);
    }
    const usage = (prefix: string) => proxy.services.store.usage!(prefix);
    assert.ok((await usage("obj:")).entries <= BOUND, `obj: ${JSON.stringify(await usage("obj:"))}`);
    // Pushed out long ago and not used since: unknown to its key now, as one past its 30 days.
    const gone = await client.files.retrieve(others[0].id).then(() => undefined, (e) => e);
    assert.ok(gone instanceof APIError && gone.status === 404, `expected a 404, got ${gone}`);
    assert.equal((await client.files.retrieve(others.at(-1)!.id)).id, others.at(-1)!.id);

    // Paging one file at a time makes a cursor record per page (per order and purpose): bounded too, and each
    // walk reaches the end, since the cursor of the page being read is the one used last.
    let cursors = 0;
    for (const order of ["desc", "asc"] as const) {
      for (const purpose of [undefined, "user_data"]) {
        let page = await client.files.list({ limit: 1, order, ...(purpose ? { purpose } : {}) });
        const seen = new Set(page.data.map((file) => file.id));
        for (let i = 0; i < 4 * BOUND && page.hasNextPage(); i++) {
          page = await page.getNextPage();
          for (const file of page.data) seen.add(file.id);
          cursors++;
        }
        assert.ok(!page.hasNextPage(), "the walk reached the end");
        assert.ok(seen.has(kept.id) && seen.size >= BOUND - 1, `${order} ${purpose}: listed ${seen.size}`);
      }
    }
    assert.ok(cursors > 2 * BOUND, `${cursors} cursor records made`);
    assert.ok((await usage("lst:")).entries <= BOUND, `lst: ${JSON.stringify(await usage("lst:"))}`);
  },
});

test({
  name:
    "memory store: list cursors stay within list_cursors_max_entries, and paging never pushes out a file's record",
  timeout: 60_000,
  async fn() {
    await using sim = await SimUpstream.start({ name: "east", quiet: true });
    const CURSORS = 4;
    const yaml = groupYaml([endpointYaml(sim.url, { name: "east" })], [
      `object_records_max_entries: ${BOUND}`,
      `list_cursors_max_entries: ${CURSORS}`,
    ]) + "keys:\n  - {name: team-a, key: team-a-key}\n";
    await using proxy = await startProxy(yaml);
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "team-a-key", maxRetries: 0 });
    const upload = async (name: string, purpose: "user_data" | "batch") =>
      client.files.create({ file: await toFile(new TextEncoder().encode("{}\n"), name), purpose });
    // Made first and never used while the lists are paged (they list only user_data files): the least recently
    // used record of all, the first out if cursors were counted with file records.
    const quiet = await upload("quiet.jsonl", "batch");
    for (let i = 0; i < BOUND - 2; i++) await upload(`doc-${i}.pdf`, "user_data");

    let cursors = 0;
    for (let walk = 0; walk < 3; walk++) {
      for (const order of ["desc", "asc"] as const) {
        let page = await client.files.list({ limit: 1, order, purpose: "user_data" });
        const seen = new Set(page.data.map((file) => file.id));
        for (let i = 0; i < 4 * BOUND && page.hasNextPage(); i++) {
          page = await page.getNextPage();
          for (const file of page.data) seen.add(file.id);
          cursors++;
        }
        assert.ok(!page.hasNextPage(), "the walk reached the end");
        assert.equal(seen.size, BOUND - 2, `walk ${walk} ${order}: every file listed`);
      }
    }
    const usage = (prefix: string) => proxy.services.store.usage!(prefix);
    assert.ok(cursors > 4 * CURSORS, `${cursors} cursor records made`);
    assert.ok((await usage("lst:")).entries <= CURSORS, `lst: ${JSON.stringify(await usage("lst:"))}`);
    assert.ok((await usage("obj:")).entries <= BOUND, `obj: ${JSON.stringify(await usage("obj:"))}`);
    assert.equal((await client.files.retrieve(quiet.id)).id, quiet.id, "the quiet file is still known");
  },
});
