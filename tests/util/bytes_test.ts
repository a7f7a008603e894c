/**
 * `BytePattern` (the shift-table search the secret mask and the usage watcher use on every event) against a plain
 * search: random patterns and texts over a small alphabet (many near misses and repeated bytes), every start offset,
 * texts shorter than the pattern, patterns longer than the 255 the shift table holds.
 */

import assert from "node:assert/strict";
import { BytePattern } from "../../src/util/bytes.ts";
import { test } from "../_support/test.ts";

/** The reference: the first `pattern` in `text` at or after `from`, compared byte by byte. */
function naive(text: Uint8Array, pattern: Uint8Array, from: number): number {
  for (let at = Math.max(0, from); at + pattern.length <= text.length; at++) {
    let same = 0;
    while (same < pattern.length && text[at + same] === pattern[same]) same++;
    if (same === pattern.length) return at;
  }
  return -1;
}

function random(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
}

test("BytePattern finds what a plain search finds, from every offset, on random texts", () => {
  const next = random(2214);
  const alphabets = [[97, 98], [97, 98, 99, 10], [0, 255, 128, 97]];
  for (let round = 0; round < 1500; round++) {
    const alphabet = alphabets[round % alphabets.length];
    const pick = () => alphabet[Math.floor(next() * alphabet.length)];
    const pattern = Uint8Array.from({ length: 1 + Math.floor(next() * 6) }, pick);
    const text = Uint8Array.from({ length: Math.floor(next() * 40) }, pick);
    // The pattern planted at a random place half the time.
    if (round % 2 === 0 && text.length >= pattern.length) {
      text.set(pattern, Math.floor(next() * (text.length - pattern.length + 1)));
    }
    const search = new BytePattern(pattern);
    for (let from = 0; from <= text.length + 1; from++) {
      assert.equal(
        search.indexIn(text, from),
        naive(text, pattern, from),
        `${pattern} in ${text} from ${from}`,
      );
    }
  }
});

test("BytePattern: patterns past 255 bytes, a last byte repeated inside, a text that ends mid-pattern", () => {
  const long = new Uint8Array(300).fill(97);
  long[299] = 98; // 'a' x 299 then 'b': shifts for 'a' capped at 255
  const search = new BytePattern(long);
  const text = new Uint8Array(1000).fill(97);
  assert.equal(search.indexIn(text), -1);
  text[650] = 98;
  assert.equal(search.indexIn(text), 351);
  assert.equal(search.indexIn(text, 351), 351);
  assert.equal(search.indexIn(text, 352), -1);
  assert.equal(search.indexIn(text.subarray(0, 650)), -1, "cut one byte before its end");
  const repeated = new BytePattern(new TextEncoder().encode("abcabc"));
  assert.equal(repeated.indexIn(new TextEncoder().encode("abcababcabcabc")), 5);
  assert.equal(new BytePattern(new Uint8Array(0)).indexIn(text, 3), 3, "the empty pattern is everywhere");
});
