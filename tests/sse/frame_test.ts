import assert from "node:assert/strict";
import { EventFramer } from "../../src/sse/frame.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

test("EventFramer finds \\n\\n, \\r\\n\\r\\n and \\r\\r boundaries", () => {
  const table: [string, string][] = [
    ["data: a\n\n", "data: a\n\n"],
    ["data: a\n\ndata: b", "data: a\n\n"],
    ["data: a\r\n\r\ndata: b", "data: a\r\n\r\n"],
    ["data: a\r\rdata", "data: a\r\r"],
  ];
  for (const [text, expected] of table) {
    const out = new EventFramer().push(encoder.encode(text));
    assert.equal(out && decoder.decode(out), expected, JSON.stringify(text));
  }
  for (const text of ["data: a\n", "data: a\r\n", ""]) {
    assert.equal(new EventFramer().push(encoder.encode(text)), undefined, JSON.stringify(text));
  }
});

test("EventFramer forwards whole events only, whatever the chunking, and loses no byte", () => {
  const stream = 'data: {"a":"é"}\n\ndata: {"b":2}\r\n\r\nevent: x\ndata: y\n\ndata: [DONE]\n\n';
  const bytes = encoder.encode(stream);
  for (let cut = 1; cut < bytes.length; cut++) {
    for (const step of [1, 3, 7]) {
      const framer = new EventFramer();
      const forwarded: string[] = [];
      const pieces = [bytes.slice(0, cut), ...chunksOf(bytes.slice(cut), step)];
      for (const piece of pieces) {
        const out = framer.push(piece);
        if (out) forwarded.push(decoder.decode(out));
      }
      assert.equal(framer.rest(), undefined);
      assert.equal(forwarded.join(""), stream, `cut ${cut} step ${step}`);
      for (const part of forwarded) {
        assert.ok(/(\n\n|\r\n\r\n)$/.test(part), `forwarded a partial event: ${part}`);
      }
    }
  }
});

test("EventFramer passes a chunk that ends on a boundary through without copying", () => {
  const chunk = encoder.encode("data: 1\n\n");
  assert.equal(new EventFramer().push(chunk), chunk);
});

test("EventFramer keeps an unfinished tail for rest()", () => {
  const framer = new EventFramer();
  assert.equal(framer.push(encoder.encode('data: {"half":')), undefined);
  assert.equal(decoder.decode(framer.rest()), 'data: {"half":');
});

function chunksOf(bytes: Uint8Array, size: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size));
  return chunks;
}
