import assert from "node:assert/strict";
import { SseScanner } from "../../src/sse/scanner.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Seen {
  readonly raw: string;
  readonly event: string | null;
  readonly data: string | null;
}

/** Scans `text` cut at `cuts` (byte offsets); every event, then what `end` left. */
function scanInPieces(text: string, cuts: number[], fields = true): { events: Seen[]; rest: string | null } {
  const bytes = encoder.encode(text);
  const scanner = new SseScanner({ fields });
  const events: Seen[] = [];
  const keep = (list: { raw: Uint8Array; event: string | null; data: string | null }[]) => {
    for (const { raw, event, data } of list) events.push({ raw: decoder.decode(raw), event, data });
  };
  let last = 0;
  for (const cut of [...cuts, bytes.length]) {
    keep(scanner.push(bytes.slice(last, cut)));
    last = cut;
  }
  const end = scanner.end();
  keep(end.events);
  return { events, rest: end.rest ? decoder.decode(end.rest) : null };
}

// CRLF, a multi-byte character, a comment-only block, multi-line data, a field without a colon, CR-only breaks,
// `data:` without its space, an unknown field, and a tail that no blank line ends.
const STREAM =
  'event: response.created\r\ndata: {"a":"é€"}\r\n\r\n: keep-alive\n\ndata: line1\ndata: line2\n\n' +
  "data\nid: 7\ndata:x\n\ndata: [DONE]\r\r" + "data: tail";
const EXPECTED: Seen[] = [
  {
    raw: 'event: response.created\r\ndata: {"a":"é€"}\r\n\r\n',
    event: "response.created",
    data: '{"a":"é€"}',
  },
  { raw: ": keep-alive\n\n", event: null, data: null },
  { raw: "data: line1\ndata: line2\n\n", event: null, data: "line1\nline2" },
  { raw: "data\nid: 7\ndata:x\n\n", event: null, data: "\nx" },
  { raw: "data: [DONE]\r\r", event: null, data: "[DONE]" },
];

test("SseScanner: the whole stream in one chunk", () => {
  assert.deepEqual(scanInPieces(STREAM, []), { events: EXPECTED, rest: "data: tail" });
});

test("SseScanner: every single split point, including \\r|\\n and inside a multi-byte character", () => {
  const length = encoder.encode(STREAM).length;
  for (let cut = 1; cut < length; cut++) {
    assert.deepEqual(
      scanInPieces(STREAM, [cut]),
      { events: EXPECTED, rest: "data: tail" },
      `split at ${cut}`,
    );
  }
});

test("SseScanner: one byte per chunk", () => {
  const length = encoder.encode(STREAM).length;
  const cuts = Array.from({ length: length - 1 }, (_, i) => i + 1);
  assert.deepEqual(scanInPieces(STREAM, cuts), { events: EXPECTED, rest: "data: tail" });
});

test("SseScanner: every pair of split points keeps the raw bytes whole (joined, they are the stream)", () => {
  const length = encoder.encode(STREAM).length;
  for (let a = 1; a < length; a += 3) {
    for (let b = a + 1; b < length; b += 5) {
      const { events, rest } = scanInPieces(STREAM, [a, b]);
      assert.equal(events.map((event) => event.raw).join("") + rest, STREAM, `split at ${a} and ${b}`);
      assert.deepEqual(events, EXPECTED, `split at ${a} and ${b}`);
    }
  }
});

test("SseScanner: a CR-LF split across chunks belongs to one line break, at any depth", () => {
  const text = "data: a\r\n\r\ndata: b\r\n\r\n";
  const expected = [
    { raw: "data: a\r\n\r\n", event: null, data: "a" },
    { raw: "data: b\r\n\r\n", event: null, data: "b" },
  ];
  for (const cuts of [[8], [9], [10], [8, 10], [7, 8, 9, 10]]) {
    assert.deepEqual(scanInPieces(text, cuts), { events: expected, rest: null }, `cuts ${cuts}`);
  }
});

test("SseScanner: a final lone CR ends its event at the end of the stream", () => {
  assert.deepEqual(scanInPieces("data: a\r", []), { events: [], rest: "data: a\r" });
  assert.deepEqual(scanInPieces("data: a\r\r", []), {
    events: [{ raw: "data: a\r\r", event: null, data: "a" }],
    rest: null,
  });
});

test("SseScanner: with fields off, the same boundaries and raw bytes, no values", () => {
  const { events, rest } = scanInPieces(STREAM, [5, 40, 41, 90], false);
  assert.deepEqual(events.map((event) => event.raw), EXPECTED.map((event) => event.raw));
  assert.ok(events.every((event) => event.data === null && event.event === null));
  assert.equal(rest, "data: tail");
});

test("SseScanner: an unfinished event is not reported, and a JSON object split mid-string joins", () => {
  const scanner = new SseScanner();
  assert.deepEqual(scanner.push(encoder.encode('data: {"half":"é')), []);
  const [event] = scanner.push(encoder.encode('"}\n\n'));
  assert.equal(event.data, '{"half":"é"}');
});
