/**
 * A reload cannot change the bounds of what the process keeps in memory (the cache's and the Responses ids'): they
 * are set when its store is made. A reload that changes them says a restart is needed, and the old bound holds.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/parse.ts";
import { LiveApp } from "../../src/live_app.ts";
import { createLogger } from "../../src/logger.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

test("reload: new cache_params.max_entries, response_affinity_max_entries and object_records_max_entries are named as needing a restart", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  const yaml = (entries: number) =>
    groupYaml([endpointYaml(sim.url, { name: "a" })], [
      "cache: true",
      `cache_params: {max_entries: ${entries}}`,
      `response_affinity_max_entries: ${entries}`,
      `object_records_max_entries: ${entries}`,
      `list_cursors_max_entries: ${entries}`,
    ]);
  const logs: string[] = [];
  const logger = createLogger({ level: "info", write: (line) => logs.push(line) });
  const live = await LiveApp.start(parseConfig(yaml(2), "test.yaml", () => undefined), { logger });
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, live.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  try {
    assert.equal(
      await live.reload(() => Promise.resolve(parseConfig(yaml(50), "test.yaml", () => undefined))),
      true,
    );
    const warned = logs.map((line) => JSON.parse(line)).filter((line) => line.level === "warn");
    const restart = warned.find((line) => /restart is needed/.test(line.msg));
    assert.ok(restart, `a warning names the bounds: ${JSON.stringify(warned)}`);
    assert.match(restart.msg, /cache_params\.max_entries/);
    assert.match(restart.msg, /response_affinity_max_entries/);
    assert.match(restart.msg, /object_records_max_entries/);
    assert.match(restart.msg, /list_cursors_max_entries/);
    assert.doesNotMatch(restart.msg, /max_bytes/, "only what changed is named");
    // The old bound holds: five distinct answers, two kept.
    for (let i = 0; i < 5; i++) {
      const answer = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: `q${i}` }] }),
      });
      assert.equal(answer.status, 200);
      await answer.body?.cancel();
    }
    await live.services.cache.settled();
    const usage = await live.services.store.usage!("cache:");
    assert.ok(usage.entries <= 2, `${usage.entries} cache entries held`);
  } finally {
    await server.shutdown();
    await live.close();
  }
});
