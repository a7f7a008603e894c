/** The logger's lines as its sink gets them (the batched stderr path: tests/e2e/access_log_test.ts). */

import assert from "node:assert/strict";
import { createLogger } from "../src/logger.ts";
import { test } from "./_support/test.ts";

test("logger: a field JSON cannot write gives a line that says so, not an exception in the caller", () => {
  const lines: string[] = [];
  const logger = createLogger({ level: "info", write: (line) => lines.push(line), now: () => 0 });
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  logger.info("odd fields", { count: 10n, cycle });
  logger.info("plain", { n: 1 });
  assert.equal(lines.length, 2);
  const odd = JSON.parse(lines[0]);
  assert.equal(odd.msg, "odd fields");
  assert.equal(odd.time, "1970-01-01T00:00:00.000Z");
  assert.match(odd.log_error, /BigInt|circular/i);
  assert.deepEqual(JSON.parse(lines[1]), {
    time: "1970-01-01T00:00:00.000Z",
    level: "info",
    msg: "plain",
    n: 1,
  });
});
