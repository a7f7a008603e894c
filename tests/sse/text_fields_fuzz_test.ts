/**
 * `TextFields` (the cache recorder's field reader over an event's decoded text) against the byte scanner's own
 * field reading, on random events made of the pieces that matter: field names with and without a colon, a space or
 * none after it, comments, CR, LF and CRLF line ends, BOMs anywhere (first in the event, first in a value, inside
 * one), multi-byte characters. For each event the scanner finds, both give the same `event` and `data`.
 */

import assert from "node:assert/strict";
import { SseScanner } from "../../src/sse/scanner.ts";
import { TextFields } from "../../src/sse/text_fields.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function random(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
}

const NAMES = ["data", "event", "id", "dat", "data ", "Data", ":", "", "\uFEFFdata", "événement"];
const VALUE_PARTS = [" ", "x", ":", "\uFEFF", "é", "😀", "data:", "  ", "\t"];
const EOLS = ["\n", "\r\n", "\r"];

test("TextFields reads what the byte scanner reads, on random events", () => {
  const next = random(808);
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)];
  let compared = 0;
  for (let round = 0; round < 3000; round++) {
    const eol = pick(EOLS);
    const lines: string[] = [];
    for (let l = 0, count = 1 + Math.floor(next() * 4); l < count; l++) {
      let line = pick(NAMES);
      if (next() < 0.8) line += ":";
      for (let p = 0, parts = Math.floor(next() * 4); p < parts; p++) line += pick(VALUE_PARTS);
      if (line === "") line = "data";
      lines.push(line + (next() < 0.2 ? pick(EOLS) : eol));
    }
    const text = (next() < 0.1 ? "\uFEFF" : "") + lines.join("") + eol;
    const bytes = encoder.encode(text);
    const scanner = new SseScanner();
    const events = [...scanner.push(bytes), ...scanner.end().events];
    compared += events.length;
    const fields = new TextFields();
    for (const event of events) {
      const raw = event.raw;
      fields.read(decoder.decode(raw), raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf);
      assert.deepEqual(
        { event: fields.event, data: fields.data },
        { event: event.event, data: event.data },
        JSON.stringify(decoder.decode(raw)),
      );
    }
  }
  assert.ok(compared > 2000, `${compared} events`);
});
