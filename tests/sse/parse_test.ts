import assert from "node:assert/strict";
import { type SseEvent, SseParser } from "../../src/sse/parse.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

function parseInPieces(text: string, cuts: number[]): SseEvent[] {
  const bytes = encoder.encode(text);
  const parser = new SseParser();
  const events: SseEvent[] = [];
  let last = 0;
  for (const cut of [...cuts, bytes.length]) {
    events.push(...parser.push(bytes.slice(last, cut)));
    last = cut;
  }
  return events;
}

const STREAM = 'event: response.created\r\ndata: {"a":"é"}\r\n\r\n: comment\n\ndata: line1\ndata: line2\n\n' +
  "data: [DONE]\r\r";
const EXPECTED: SseEvent[] = [
  { event: "response.created", data: '{"a":"é"}' },
  { event: null, data: "line1\nline2" },
  { event: null, data: "[DONE]" },
];

test("SseParser: whole stream at once", () => {
  assert.deepEqual(parseInPieces(STREAM, []), EXPECTED);
});

test("SseParser: every possible single split point, including \\r|\\n and inside a multi-byte character", () => {
  const length = encoder.encode(STREAM).length;
  for (let cut = 1; cut < length; cut++) {
    assert.deepEqual(parseInPieces(STREAM, [cut]), EXPECTED, `split at ${cut}`);
  }
});

test("SseParser: one byte at a time", () => {
  const length = encoder.encode(STREAM).length;
  assert.deepEqual(parseInPieces(STREAM, Array.from({ length: length - 1 }, (_, i) => i + 1)), EXPECTED);
});

test("SseParser: an unfinished event is not reported", () => {
  assert.deepEqual(parseInPieces('data: {"half":', []), []);
});
