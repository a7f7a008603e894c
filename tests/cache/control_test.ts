import assert from "node:assert/strict";
import { DEFAULT_CONTROL, parseCacheControl } from "../../src/cache/control.ts";
import { ProxyError } from "../../src/errors.ts";
import { test } from "../_support/test.ts";

test("no controls: read and write with the configured ttl", () => {
  assert.deepEqual(parseCacheControl(undefined, null), DEFAULT_CONTROL);
  assert.deepEqual(parseCacheControl({}, ""), { read: true, write: true });
});

test("body cache object: no-cache, no-store, ttl", () => {
  assert.deepEqual(parseCacheControl({ "no-cache": true }, null), { read: false, write: true });
  assert.deepEqual(parseCacheControl({ "no-store": true }, null), { read: true, write: false });
  assert.deepEqual(parseCacheControl({ "no-cache": false, ttl: 60 }, null), {
    read: true,
    write: true,
    ttlSeconds: 60,
  });
  assert.deepEqual(parseCacheControl({ ttl: 0 }, null), { read: true, write: false });
});

test("Cache-Control header: directives in any case and order, quoted max-age, unknown ones ignored", () => {
  assert.deepEqual(parseCacheControl(undefined, "no-cache"), { read: false, write: true });
  assert.deepEqual(parseCacheControl(undefined, "No-Store"), { read: true, write: false });
  assert.deepEqual(parseCacheControl(undefined, 'private, max-age="120" , no-cache'), {
    read: false,
    write: true,
    ttlSeconds: 120,
  });
  assert.deepEqual(parseCacheControl(undefined, "max-age=0"), { read: true, write: false });
  assert.deepEqual(parseCacheControl(undefined, "max-age=soon, must-revalidate"), DEFAULT_CONTROL);
});

test("body and header combine: flags add up, the body's ttl wins", () => {
  assert.deepEqual(parseCacheControl({ "no-store": true }, "no-cache"), { read: false, write: false });
  assert.deepEqual(parseCacheControl({ ttl: 5 }, "max-age=500"), { read: true, write: true, ttlSeconds: 5 });
});

test("a malformed body cache object is a 400 naming the field", () => {
  const cases: [unknown, RegExp][] = [
    ["yes", /'cache' must be an object, got string/],
    [[], /'cache' must be an object, got array/],
    [{ "no-cache": "true" }, /'cache.no-cache' must be a boolean, got string/],
    [{ ttl: -1 }, /'cache.ttl' must be a number of seconds >= 0, got -1/],
    [{ ttl: "60" }, /'cache.ttl' must be a number of seconds >= 0, got string/],
    [{ no_cache: true }, /'cache.no_cache' is not a cache control; known: 'no-cache', 'no-store', 'ttl'/],
  ];
  for (const [value, message] of cases) {
    assert.throws(
      () => parseCacheControl(value, null),
      (error: unknown) => error instanceof ProxyError && error.status === 400 && message.test(error.message),
      JSON.stringify(value),
    );
  }
});
