/**
 * The cache key's canonical JSON written as bytes (`canonical_bytes.ts`) must be exactly the UTF-8 of the text
 * (`canonical_json.ts`): keys, and the entries stored under them in Redis, stay the same.
 */

import assert from "node:assert/strict";
import { CanonicalBytes } from "../../src/cache/canonical_bytes.ts";
import { canonicalJson } from "../_support/canonical_json.ts";
import { cacheKey, cacheKeyAsync } from "../../src/cache/key.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

function bytesOf(value: unknown): Uint8Array {
  const sink = new CanonicalBytes();
  sink.reset();
  if (!sink.value(value)) sink.ascii("null");
  return sink.bytes.slice(0, sink.length);
}

test("canonical bytes: the UTF-8 of the canonical text, for awkward values", () => {
  const lone = "\ud800 x \udc00";
  const values: unknown[] = [
    { b: 1, a: { d: [3, { z: 1, y: 2 }], c: null }, u: undefined, f: () => 1 },
    ["é ✓ 😀", lone, "tab\there", 'quote " and \\ backslash', "\u0000\u001f\u007f", "x".repeat(5001)],
    { [lone]: 1, "😀": [undefined, () => 0, Symbol("s")], "\n": { toJSON: () => "as json" } },
    [0, -0, 1e21, 1.5e-7, NaN, Infinity, -Infinity, 123456789012345680000, 10n, true, false, null],
    new Date(0),
    { nested: { deep: [{ b: "é".repeat(3000), a: "a".repeat(5000) }] } }, // grows the buffer past 4 KiB
    "",
    {},
    [],
  ];
  for (const value of values) {
    assert.deepEqual(bytesOf(value), encoder.encode(canonicalJson(value)), canonicalJson(value).slice(0, 80));
  }
});

test("canonical bytes: the key hashed from the bytes is the key hashed from the text, small and native", async () => {
  let seed = 11;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const text = (max: number) => {
    let out = "";
    for (let n = Math.floor(random() * max); n > 0; n--) {
      out += String.fromCharCode(
        random() < 0.8 ? 32 + Math.floor(random() * 95) : Math.floor(random() * 0xffff),
      );
    }
    return out;
  };
  for (let i = 0; i < 2000; i++) {
    const body: Record<string, unknown> = {
      model: text(8),
      messages: [{ role: "user", content: text(i % 50 ? 40 : 9000) }],
    };
    if (i % 3 === 0) body.temperature = random();
    if (i % 7 === 0) body.cache = { ttl: 5 };
    const input = {
      route: "chat" as const,
      group: text(6),
      stream: i % 2 === 0,
      body,
      scope: i % 5 ? undefined : text(6),
    };
    assert.equal(await cacheKeyAsync(input), cacheKey(input), JSON.stringify(input).slice(0, 80));
  }
});
