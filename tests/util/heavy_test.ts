import assert from "node:assert/strict";
import { BIG_WORK, heavy, noteSize, sizeOf } from "../../src/util/heavy.ts";
import { test } from "../_support/test.ts";

test("a big body's size is remembered, so its work waits its turn; a small body's work runs at once", async () => {
  const big = noteSize({}, BIG_WORK);
  const small = noteSize({}, BIG_WORK - 1);
  assert.equal(sizeOf(big), BIG_WORK);
  // Nothing is kept for a small body: its work counts as small either way.
  assert.equal(sizeOf(small), 0);
  assert.equal(heavy(sizeOf(small), () => "now"), "now");
  const later = heavy(sizeOf(big), () => "later");
  assert.ok(later instanceof Promise);
  assert.equal(await later, "later");
});
