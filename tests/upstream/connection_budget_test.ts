/** The upstream connections kept for reuse, from the open-file limit and the client-connection cap. */

import assert from "node:assert/strict";
import { upstreamConnectionBudget } from "../../src/upstream/connection_budget.ts";
import { defaultMaxConnections, openFileLimit } from "../../src/serve/fd_limit.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { createLogger } from "../../src/logger.ts";
import { buildServices } from "../../src/services.ts";
import { endpointYaml, groupYaml } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

test("connection budget: what the client-connection cap leaves of the open-file limit, less a reserve", () => {
  for (const limit of [256, 1024, 4096, 20_000, 1_048_576]) {
    const budget = upstreamConnectionBudget(limit);
    // Clients at their default cap, every one with a call upstream, and every other connection parked: in the limit.
    assert.ok(defaultMaxConnections(limit) + budget + 64 <= limit, `limit ${limit}: budget ${budget}`);
    assert.ok(budget >= defaultMaxConnections(limit), `limit ${limit}: budget ${budget}: one per client`);
  }
  assert.equal(upstreamConnectionBudget(20_000), 9_968);
  assert.equal(upstreamConnectionBudget(1024), 480);
  assert.equal(upstreamConnectionBudget(20_000, 1000), 18_936, "a configured client cap leaves more");
  assert.equal(upstreamConnectionBudget(20_000, 19_990), 16, "at least 16");
  assert.equal(upstreamConnectionBudget(undefined), 1024, "limit unknown");
  assert.equal(upstreamConnectionBudget(Infinity), 65_536, "unlimited");
});

test("connection budget: worked out at start-up and kept by a reload, as max_connections is", {
  timeout: 10_000,
}, async () => {
  const logger = createLogger({ level: "error", write: () => {} });
  const yaml = (cap: number) =>
    groupYaml([endpointYaml("http://127.0.0.1:9", { name: "a" })], [`max_connections: ${cap}`]);
  const first = await buildServices(parseConfig(yaml(100), "test.yaml", () => undefined), { logger });
  const budget = upstreamConnectionBudget(openFileLimit(), 100);
  assert.equal(first.upstream.limits.maxOpenConnections, budget);
  const reloaded = await buildServices(parseConfig(yaml(5000), "test.yaml", () => undefined), {
    logger,
    previous: first,
  });
  assert.equal(
    reloaded.upstream.limits.maxOpenConnections,
    budget,
    "the server keeps its cap, so the budget too",
  );
  await reloaded.close();
  await first.close();
});
