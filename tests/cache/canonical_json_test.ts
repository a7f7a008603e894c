import assert from "node:assert/strict";
import stringify from "safe-stable-stringify";
import { canonicalJson } from "../_support/canonical_json.ts";
import { test } from "../_support/test.ts";

test("canonical JSON: keys sorted at every depth, undefined members left out, no whitespace", () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [3, { z: null, y: "é\n" }], c: undefined }, "10": true, "9": false }),
    '{"10":true,"9":false,"a":{"d":[3,{"y":"é\\n","z":null}]},"b":1}',
  );
  assert.equal(canonicalJson([undefined, () => 1, NaN, -0, 1e21]), "[null,null,null,0,1e+21]");
  assert.equal(canonicalJson(undefined), "null");
  assert.equal(canonicalJson("\ud800\u2028"), JSON.stringify("\ud800\u2028"));
});

// Cache keys hash this text: byte for byte what safe-stable-stringify (used before) writes, so no key changed.
test("canonical JSON: what safe-stable-stringify writes, for 5,000 random parsed JSON values", () => {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const text = () => {
    let out = "";
    for (let n = Math.floor(random() * 12); n > 0; n--) {
      out += String.fromCharCode(
        random() < 0.7 ? 32 + Math.floor(random() * 90) : Math.floor(random() * 0xffff),
      );
    }
    return out;
  };
  const value = (depth: number): unknown => {
    const kind = random();
    if (depth > 4 || kind < 0.3) {
      const leaf = random();
      if (leaf < 0.3) return text();
      if (leaf < 0.6) return (random() - 0.5) * 10 ** Math.floor(random() * 30 - 10);
      return leaf < 0.8 ? random() < 0.5 : null;
    }
    if (kind < 0.6) return Array.from({ length: Math.floor(random() * 5) }, () => value(depth + 1));
    const object: Record<string, unknown> = {};
    for (let n = Math.floor(random() * 6); n > 0; n--) object[text()] = value(depth + 1);
    return object;
  };
  for (let i = 0; i < 5000; i++) {
    const parsed = JSON.parse(JSON.stringify(value(0)));
    assert.equal(canonicalJson(parsed), stringify(parsed));
  }
});
