/**
 * Taking out of a chat stream what asking for `include_usage` added: the usage chunk and each chunk's
 * `"usage":null`, with events split anywhere across chunks; everything else passes byte for byte.
 */

import assert from "node:assert/strict";
import { askForUsage, asksForUsage, usageStripper } from "../../src/usage/stream_usage_option.ts";
import { test } from "../_support/test.ts";

const chunk = (content: string, usage = true) =>
  `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"${content}"}}]${
    usage ? ',"usage":null' : ""
  }}`;
const USAGE_CHUNK =
  'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}';

async function strip(parts: Uint8Array[]): Promise<string> {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  }).pipeThrough(usageStripper());
  return await new Response(stream).text();
}

const bytes = (text: string) => new TextEncoder().encode(text);

/** Every way of cutting `text` into pieces of `size` bytes. */
const pieces = (text: string, size: number) => {
  const all = bytes(text);
  const out: Uint8Array[] = [];
  for (let i = 0; i < all.length; i += size) out.push(all.slice(i, i + size));
  return out;
};

test('the usage chunk and every "usage":null go; the rest is the stream without include_usage', async () => {
  for (const newline of ["\n", "\r\n"]) {
    const sep = newline + newline;
    const asked = [chunk("Hel"), chunk("lo"), USAGE_CHUNK, "data: [DONE]"].join(sep) + sep;
    const plain = [chunk("Hel", false), chunk("lo", false), "data: [DONE]"].join(sep) + sep;
    for (const size of [1, 2, 7, 64, asked.length]) {
      assert.equal(await strip(pieces(asked, size)), plain, `pieces of ${size}, ${JSON.stringify(newline)}`);
    }
  }
});

test("events that carry no usage pass untouched; other JSON shapes are rewritten without the field", async () => {
  const untouched = 'event: x\ndata: {"a":"usage is a word","b":1}\n\n: comment\n\ndata: [DONE]\n\n';
  assert.equal(await strip(pieces(untouched, 3)), untouched);
  const spaced = 'data: { "usage": null, "choices": [ {"delta": {}} ] }\n\n';
  assert.equal(await strip([bytes(spaced)]), 'data: {"choices":[{"delta":{}}]}\n\n');
  // A stream that ends without a final blank line keeps its last event.
  assert.equal(await strip([bytes(`${chunk("x")}`)]), chunk("x", false));
});

test("asking for usage keeps the client's other stream options", () => {
  assert.ok(!asksForUsage({ stream: true }));
  assert.ok(asksForUsage({ stream_options: { include_usage: true } }));
  assert.deepEqual(askForUsage({ stream: true, stream_options: { continuous_usage_stats: false } }), {
    stream: true,
    stream_options: { continuous_usage_stats: false, include_usage: true },
  });
});

test('events that come one per chunk are cut on their bytes; two in one chunk lose both "usage":null', async () => {
  const one = [chunk("a"), chunk("b"), USAGE_CHUNK, "data: [DONE]"].map((event) => bytes(`${event}\n\n`));
  const plain = `${chunk("a", false)}\n\n${chunk("b", false)}\n\ndata: [DONE]\n\n`;
  assert.equal(await strip(one), plain);
  assert.equal(
    await strip([bytes(`${chunk("a")}\n\n${chunk("b")}\n\n`)]),
    `${chunk("a", false)}\n\n${chunk("b", false)}\n\n`,
  );
  assert.equal(
    await strip([bytes(`${chunk("a")}\r\n${chunk("b")}\n\n`)]),
    `${chunk("a", false)}\r\n${chunk("b")}\n\n`,
  );
});

test("events joined in one read, in any grouping, come out as they do one per read", async () => {
  const events = [
    ...["Hé", "llo ✓", "😀", "", "x".repeat(900), "and more"].map((content) => chunk(content)),
    USAGE_CHUNK,
    "data: [DONE]",
  ].map((event) => `${event}\n\n`);
  const plain = events.filter((event) => !event.startsWith(USAGE_CHUNK)).map((event) =>
    event.replace(',"usage":null}', "}")
  ).join("");
  assert.equal(await strip(events.map(bytes)), plain, "one per read");
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let round = 0; round < 200; round++) {
    const reads: Uint8Array[] = [];
    for (let at = 0; at < events.length;) {
      const take = 1 + Math.floor(random() * 4);
      reads.push(bytes(events.slice(at, at + take).join("")));
      at += take;
    }
    assert.equal(await strip(reads), plain, `round ${round}: ${reads.length} reads`);
  }
  // A joined read ending in the usage chunk: that chunk goes, the events before it lose their field.
  const last = bytes(events.slice(4).join(""));
  assert.equal(
    await strip([last]),
    events.slice(4).filter((e) => !e.startsWith(USAGE_CHUNK)).join("").replaceAll(',"usage":null}', "}"),
  );
});
