/**
 * The memory store keeps files' and batches' records (30 days) and list cursors (an hour) bounded by
 * `object_records_max_entries`, least recently used out first: a client making objects and paging lists cannot
 * grow the process without limit, and what it uses survives (its file in use, the cursor of the page it reads).
 * The real proxy with no Redis, a simulated upstream, the openai client with a client key.
 */

import assert from "node:assert/strict";
import OpenAI, { APIError, toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const BOUND = 8;

test({
  name:
    "memory store: file records and list cursors stay within object_records_max_entries; the ones in use survive",
  timeout: 60_000,
  async fn() {
    await using sim = await SimUpstream.start({ name: "east", quiet: true });
    const yaml =
      groupYaml([endpointYaml(sim.url, { name: "east" })], [`object_records_max_entries: ${BOUND}`]) +
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
