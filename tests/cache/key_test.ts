import assert from "node:assert/strict";
import { canonicalJson } from "../_support/canonical_json.ts";
import { cacheKey, cacheKeyAsync } from "../../src/cache/key.ts";
import { test } from "../_support/test.ts";

const base = { route: "chat" as const, group: "gpt-test", stream: false };
const messages = [{ role: "user", content: "hi" }];

test("canonicalJson sorts keys at every depth and keeps array order", () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null }, u: undefined }),
    '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
  );
  assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
});

test("the key is a hex SHA-256 that ignores key order at every depth", () => {
  const a = cacheKey({
    ...base,
    body: { model: "gpt-test", messages, temperature: 0, extra: { x: 1, y: 2 } },
  });
  const b = cacheKey({
    ...base,
    body: { extra: { y: 2, x: 1 }, temperature: 0, messages, model: "gpt-test" },
  });
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.equal(a, b);
});

test("the proxy-only cache field never changes the key; stream false and a missing stream are one request", () => {
  const body = { model: "gpt-test", messages };
  const plain = cacheKey({ ...base, body });
  assert.equal(cacheKey({ ...base, body: { ...body, cache: { "no-store": true, ttl: 5 } } }), plain);
  assert.equal(cacheKey({ ...base, body: { ...body, stream: false } }), plain);
});

test("route, group, stream and any body value change the key", () => {
  const body = { model: "gpt-test", messages };
  const plain = cacheKey({ ...base, body });
  const others = [
    cacheKey({ ...base, route: "responses", body }),
    cacheKey({ ...base, group: "other", body }),
    cacheKey({ ...base, stream: true, body: { ...body, stream: true } }),
    cacheKey({ ...base, body: { ...body, temperature: 0.1 } }),
    cacheKey({ ...base, body: { ...body, messages: [{ role: "user", content: "hi " }] } }),
    cacheKey({ ...base, body: { ...body, stream_options: { include_usage: true } } }),
  ];
  assert.equal(new Set([plain, ...others]).size, others.length + 1);
});

test("a big body's key, hashed off the event loop, is the same as the one hashed at once", async () => {
  const body = { model: "gpt-test", messages: [{ role: "user", content: "é".repeat(300_000) }] };
  const atOnce = cacheKey({ ...base, body });
  const big = cacheKeyAsync({ ...base, body }, 600_000);
  assert.ok(big instanceof Promise);
  assert.equal(await big, atOnce);
});

// A body whose size was never noted (a Responses conversation replayed after its owner failed: a new body object)
// counts as size 0; its key must still be hashed natively, not by the JavaScript SHA-256 on the event loop (about
// 10-40x slower: ~40 ms per MiB on a loaded 2-core machine, stalling every other request meanwhile).
test("a long body with no noted size is still hashed natively, to the same key", async () => {
  const body = { model: "gpt-test", input: [{ role: "user", content: "x".repeat(1_000_000) }] };
  const key = cacheKeyAsync({ ...base, route: "responses", body });
  assert.ok(key instanceof Promise, "hashed by crypto.subtle, not on the calling thread");
  assert.equal(await key, cacheKey({ ...base, route: "responses", body }));
  assert.equal(
    typeof cacheKeyAsync({ ...base, body: { model: "gpt-test" } }),
    "string",
    "a short one at once",
  );
});

// Entries already stored (Redis) are found again after an upgrade only if the key's text never changes: these are
// the keys the proxy computed before the key was written without building its object (session 12).
test("keys are the ones earlier versions computed, with and without a scope", () => {
  const body = { model: "gpt-test", messages, temperature: 0.5, cache: { ttl: 5 } };
  assert.equal(
    cacheKey({ ...base, body }),
    "f634bc0fa053cfc51d5fe10cbc07cd67c61e3b2e6cb05bd418c686e075b0e8b5",
  );
  const streamed = { stream: true, model: "gpt-test", input: 'héllo "😀"' };
  assert.equal(
    cacheKey({ route: "responses", group: "gpt-test", stream: true, body: streamed, scope: "key:team-a" }),
    "a2c26d158026ca7a1492e9cb3aa6b8beac1748cd53494766b6294e0d1cfe07e4",
  );
});
