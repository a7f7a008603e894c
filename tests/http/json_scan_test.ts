import assert from "node:assert/strict";
import { newScan, scanJson } from "../../src/http/json_scan.ts";
import { test } from "../_support/test.ts";

/** Scans `text` in pieces of `piece` characters. */
function scanned(text: string, piece: number, maxItems = Infinity) {
  const scan = newScan();
  while (!scanJson(text, scan, scan.at + piece, maxItems));
  return scan;
}

/** Valid JSON: 3 objects, 3 arrays, 6 members, 3 deep; brackets, colons and escaped quotes inside strings. */
const TEXT = String.raw`{"a":[1,{"b:{[":"}]\"x\\"},[]],"c\\":{"d":-2.5,"e":"\\\"{"},"t":[true,false,null]}`;

test("counts objects, arrays and members, not what strings hold, however the text is cut", () => {
  const whole = scanned(TEXT, Infinity);
  assert.deepEqual({ ...whole, at: 0 }, { at: 0, items: 12, depth: 0, deepest: 3, bigNumber: false });
  assert.equal(whole.at, TEXT.length);
  for (let piece = 1; piece < 12; piece++) {
    assert.deepEqual(scanned(TEXT, piece), whole, `pieces of ${piece}`);
  }
});

test("a number with an exponent or of more than 300 characters may be out of range; true and false are not", () => {
  assert.equal(scanned('{"a":[true,false]}', 3).bigNumber, false);
  assert.equal(scanned('{"a":1e999}', 3).bigNumber, true);
  assert.equal(scanned('{"a":-1E5}', 3).bigNumber, true);
  assert.equal(scanned(`{"a":${"9".repeat(301)}}`, 3).bigNumber, true);
  assert.equal(scanned(`{"a":${"9".repeat(300)}}`, 3).bigNumber, false);
  for (let piece = 1; piece < 8; piece++) { // however a number is cut between pieces
    assert.equal(scanned('{"a":[1,25e5]}', piece).bigNumber, true, `pieces of ${piece}`);
    assert.equal(scanned(`[${"9".repeat(301)}]`, piece).bigNumber, true, `pieces of ${piece}`);
  }
});

test("stops once more than the cap is seen; a string left open ends the text", () => {
  const text = `[${"{},".repeat(1000)}{}]`;
  const scan = scanned(text, 64, 10);
  assert.equal(scan.items, 11);
  assert.ok(scan.at < 40, `scanned to ${scan.at}`);
  assert.equal(scanned('{"a":"open', 2).at, 10);
});
