/**
 * Copies carved out of shared slabs: each copy keeps its bytes whatever happens to the bytes it was copied from
 * and to the copies made after it (a full slab is left to its views, never written again).
 */

import assert from "node:assert/strict";
import { MAX_SLAB_COPY, SLAB_BYTES, slabCopy } from "../../src/upstream/chunk_slab.ts";
import { test } from "../_support/test.ts";

test("copies stay intact while the source is overwritten and later copies fill and replace the slab", () => {
  const source = new Uint8Array(300);
  const copies: { copy: Uint8Array; fill: number }[] = [];
  // Enough copies to fill several slabs, of sizes that do not divide a slab evenly.
  for (let i = 0; copies.length * 300 < SLAB_BYTES * 3; i++) {
    const fill = i % 251;
    source.fill(fill);
    copies.push({ copy: slabCopy(source.subarray(0, 300 - (i % 7))), fill });
  }
  source.fill(255);
  for (const [i, { copy, fill }] of copies.entries()) {
    assert.equal(copy.length, 300 - (i % 7));
    assert.ok(copy.every((byte) => byte === fill), `copy ${i} was overwritten`);
  }
  const buffers = new Set(copies.map(({ copy }) => copy.buffer));
  assert.ok(buffers.size >= 3 && buffers.size < copies.length / 10, "many copies share each slab");
});

test("a large range gets a buffer of its own; an empty one is empty", () => {
  const large = new Uint8Array(MAX_SLAB_COPY + 1).fill(7);
  const copy = slabCopy(large);
  assert.equal(copy.buffer.byteLength, large.length);
  assert.notEqual(copy.buffer, large.buffer);
  large.fill(0);
  assert.ok(copy.every((byte) => byte === 7));
  assert.equal(slabCopy(new Uint8Array(0)).length, 0);
});
