import assert from "node:assert/strict";
import { LruValues, utf8Length } from "../../src/store/lru.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { test } from "../_support/test.ts";

test("LruValues: the least recently used goes first when the entry bound is passed", () => {
  const lru = new LruValues({ maxEntries: 2, maxBytes: 1000 });
  lru.set("a", "1");
  lru.set("b", "2");
  assert.equal(lru.get("a"), "1"); // a is now the most recent
  lru.set("c", "3");
  assert.equal(lru.get("b"), null);
  assert.equal(lru.get("a"), "1");
  assert.equal(lru.get("c"), "3");
  assert.deepEqual(lru.usage(), { entries: 2, bytes: 4 });
});

test("LruValues: under churn the newest entries and the ones still being read stay, the rest go", () => {
  const lru = new LruValues({ maxEntries: 100, maxBytes: 1_000_000 });
  lru.set("kept", "read all along");
  for (let i = 0; i < 10_000; i++) {
    lru.set(`k${i}`, `v${i}`);
    if (i % 50 === 0) assert.equal(lru.get("kept"), "read all along");
  }
  assert.equal(lru.size, 100);
  assert.equal(lru.get("k0"), null);
  assert.equal(lru.get("k9900"), null, "pushed out by the reads of 'kept'");
  assert.equal(lru.get("k9999"), "v9999");
  assert.equal(lru.get("kept"), "read all along");
  lru.delete("kept");
  lru.set("new", "x");
  assert.equal(lru.get("k9901"), "v9901");
  assert.equal(lru.size, 100);
  // Bytes follow the entries through every eviction: 99 of "kNNNN"+"vNNNN" (10 bytes) and "new"+"x" (4).
  assert.deepEqual(lru.usage(), { entries: 100, bytes: 99 * 10 + 4 });
});

test("LruValues: bounded by bytes (keys included), a value that can never fit is refused", () => {
  const lru = new LruValues({ maxEntries: 100, maxBytes: 10 });
  lru.set("a", "1234"); // 5 bytes
  lru.set("b", "1234"); // 10
  lru.set("c", "é"); // 3 bytes: a goes
  assert.equal(lru.get("a"), null);
  assert.deepEqual(lru.usage(), { entries: 2, bytes: 8 });
  assert.throws(() => lru.set("big", "12345678"), RangeError);
  assert.equal(lru.get("b"), "1234", "a refused value evicts nothing");
  lru.set("b", "x"); // replacing frees the old size
  assert.deepEqual(lru.usage(), { entries: 2, bytes: 5 });
});

test("LruValues: entries expire by the given clock", () => {
  let now = 1000;
  const lru = new LruValues({ maxEntries: 10, maxBytes: 1000 }, () => now);
  lru.set("a", "1", 100);
  lru.set("b", "2");
  now += 100;
  assert.equal(lru.has("a"), false);
  assert.deepEqual(lru.usage(), { entries: 1, bytes: 2 });
  lru.set("c:1", "x", 50);
  lru.set("c:2", "y");
  now += 50;
  assert.equal(lru.deleteByPrefix("c:"), 1, "only live entries count");
});

test("utf8Length counts bytes, not UTF-16 units", () => {
  for (const text of ["", "abc", "é", "€", "👋", "a👋é€z"]) {
    assert.equal(utf8Length(text), new TextEncoder().encode(text).length, text);
  }
});

test("MemoryStore bounds keys under its bounded prefix only, and counts them for usage", async () => {
  const store = new MemoryStore({ bounded: { prefix: "cache:", maxEntries: 2, maxBytes: 1000 } });
  await store.set("cache:a", "1");
  await store.set("cache:b", "2");
  await store.set("cache:c", "3");
  for (let i = 0; i < 5; i++) await store.set(`affinity:${i}`, "x");
  assert.equal(await store.get("cache:a"), null);
  assert.equal(await store.get("cache:c"), "3");
  assert.equal(await store.get("affinity:0"), "x");
  assert.deepEqual(await store.usage("cache:"), { entries: 2, bytes: 16 });
  assert.deepEqual(await store.usage("affinity:"), { entries: 5, bytes: 5 });
  assert.equal(await store.setIfAbsent("cache:b", "again", 1000), false);
  assert.equal(await store.setIfAbsent("cache:d", "4", 1000), true);
  assert.equal(await store.deleteByPrefix("cache:"), 2);
  assert.equal(await store.get("affinity:4"), "x");
  await assert.rejects(() =>
    new MemoryStore({ bounded: { prefix: "c:", maxEntries: 9, maxBytes: 4 } }).set("c:x", "long")
  );
});

test("MemoryStore getNow and setNow (the cache's lookup and write at once) are get and set without the promise", async () => {
  let now = 1_000;
  const store = new MemoryStore({
    bounded: { prefix: "cache:", maxEntries: 2, maxBytes: 1000 },
    now: () => now,
  });
  store.setNow("cache:a", "1", 50);
  assert.equal(await store.get("cache:a"), "1");
  await store.set("cache:b", "2");
  assert.equal(store.getNow("cache:b"), "2");
  store.setNow("affinity:x", "x", 50);
  assert.equal(store.getNow("affinity:x"), "x");
  now += 50;
  assert.equal(store.getNow("cache:a"), null, "expired");
  assert.equal(store.getNow("affinity:x"), null, "expired");
  store.setNow("cache:c", "3");
  store.setNow("cache:d", "4");
  assert.equal(store.getNow("cache:b"), null, "the least recently used went");
  const small = new MemoryStore({ bounded: { prefix: "c:", maxEntries: 9, maxBytes: 4 } });
  assert.throws(() => small.setNow("c:x", "long"), RangeError);
});
