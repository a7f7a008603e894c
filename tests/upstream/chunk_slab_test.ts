/**
 * Copies carved out of shared slabs: each copy keeps its bytes whatever happens to the bytes it was copied from
 * and to the copies made after it (a full slab is left to its views, never written again).
 */

import assert from "node:assert/strict";
import {
  MAX_SLAB_COPY,
  SLAB_BYTES,
  slabCopy,
  slabCopyRange,
  WHOLE_COPY_BYTES,
  WHOLE_COPY_SKIP,
} from "../../src/upstream/chunk_slab.ts";
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

test("ranges of small sources (copied whole) and of larger ones hold their bytes only, whatever is copied after", () => {
  const copies: { copy: Uint8Array; fill: number; length: number }[] = [];
  for (let i = 0; copies.length * 200 < SLAB_BYTES * 8; i++) {
    // A connection's buffer: the range between bytes of other values (a chunk's size line, the next event).
    const size = i % 3 === 0 ? WHOLE_COPY_BYTES + 1 : i % 3 === 1 ? WHOLE_COPY_BYTES : 512;
    const source = new Uint8Array(size).fill(254);
    const fill = i % 251;
    const from = i % 4 === 3 ? WHOLE_COPY_SKIP + 150 + (i % 50) : 3 + (i % 5); // some deep in their source
    const length = 150 + (i % 9) * 7;
    source.fill(fill, from, from + length);
    copies.push({ copy: slabCopyRange(source, from, from + length), fill, length });
    source.fill(255);
  }
  for (const [i, { copy, fill, length }] of copies.entries()) {
    assert.equal(copy.length, length, `copy ${i} has its range's length`);
    assert.ok(copy.every((byte) => byte === fill), `copy ${i} holds its range's bytes and nothing else`);
  }
  const buffers = new Set(copies.map(({ copy }) => copy.buffer));
  const bytes = copies.reduce((sum, { length }) => sum + length, 0);
  assert.ok(
    buffers.size >= 3 && buffers.size <= Math.ceil(bytes * 1.05 / SLAB_BYTES) + 1,
    "slabs are filled",
  );
  const large = new Uint8Array(2 * MAX_SLAB_COPY).fill(9);
  const own = slabCopyRange(large, 1, MAX_SLAB_COPY + 2);
  assert.equal(own.buffer.byteLength, MAX_SLAB_COPY + 1, "a large range gets a buffer of its own");
});
