import assert from "node:assert/strict";
import { brief, sampleFromSchema, splitPieces } from "../../src/sim/content.ts";
import { vectorFor } from "../../src/sim/embeddings.ts";
import { ResponseBook } from "../../src/sim/responses.ts";
import { test } from "../_support/test.ts";

test("splitPieces: exactly n non-empty pieces that join back, padding short texts", () => {
  for (const [text, n] of [["[east] echo: hello", 5], ["abc", 3], ["héllo 👋 wörld", 4]] as const) {
    const pieces = splitPieces(text, n);
    assert.equal(pieces.length, n);
    assert.ok(pieces.every((p) => p.length > 0));
    assert.equal(pieces.join(""), text);
  }
  assert.deepEqual(splitPieces("{}", 4, " "), ["{", "}", " ", " "]);
  assert.deepEqual(splitPieces("👋👋", 2), ["👋", "👋"], "never splits a surrogate pair");
});

test("brief: collapses whitespace and shortens long text", () => {
  assert.equal(brief("  a\n\n b "), "a b");
  const long = brief("x".repeat(500));
  assert.equal(long.length, 80);
  assert.ok(long.endsWith("..."));
});

test("sampleFromSchema: fills objects, follows $ref, prefers enums and non-null choices", () => {
  const schema = {
    type: "object",
    properties: {
      name: { type: "string" },
      count: { type: "integer", minimum: 3 },
      kind: { enum: ["a", "b"] },
      maybe: { anyOf: [{ type: "null" }, { type: "number" }] },
      nested: { $ref: "#/$defs/Inner" },
      list: { type: "array", items: { type: "boolean" } },
      fixed: { const: 7 },
    },
    $defs: { Inner: { type: ["object", "null"], properties: { ok: { type: "boolean" } } } },
  };
  assert.deepEqual(sampleFromSchema(schema, "hi"), {
    name: "hi",
    count: 3,
    kind: "a",
    maybe: 1,
    nested: { ok: true },
    list: [true],
    fixed: 7,
  });
  assert.equal(sampleFromSchema(undefined, "hi"), "hi");
});

test("vectorFor: deterministic, text-dependent, float32-exact", () => {
  assert.deepEqual(vectorFor("a"), vectorFor("a"));
  assert.notDeepEqual(vectorFor("a"), vectorFor("b"));
  assert.equal(vectorFor("a", 32).length, 32);
  const v = vectorFor("some text");
  assert.deepEqual(Array.from(new Float32Array(v)), v);
});

test("ResponseBook: a continued response is kept like a new one; the unused oldest is forgotten first", () => {
  const book = new ResponseBook(3);
  let n = 0;
  const ctx = { name: "east", id: (prefix: string) => `${prefix}_east_${n++}`, chunks: 1, bodyLength: 10 };
  const create = (previous?: unknown) =>
    book.create({ model: "m", input: "hi", previous_response_id: previous }, ctx, false).id;
  const base = create();
  const other = create();
  for (let i = 0; i < 4; i++) create(base); // each continuation of `base` is newer than it, yet `base` stays
  assert.ok(book.get(String(base)), "the continued response is still known");
  assert.equal(book.get(String(other)), undefined, "the one never used again was forgotten");
  assert.throws(() => create(other), /not found/);
});
