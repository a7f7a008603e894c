/** Key parsing, constant-time matching and the open-relay warning, without a server. */

import assert from "node:assert/strict";
import {
  isAdminRoute,
  keyDigest,
  KeySet,
  openRelayWarning,
  presentedKeys,
} from "../../../src/http/middleware/auth.ts";
import { test } from "../../_support/test.ts";

test("a request presents its Bearer token and its api-key header", () => {
  assert.deepEqual(presentedKeys(new Headers({ authorization: "Bearer sk-one" })), ["sk-one"]);
  assert.deepEqual(presentedKeys(new Headers({ authorization: "bearer  sk-one " })), ["sk-one"]);
  assert.deepEqual(presentedKeys(new Headers({ "api-key": "az-key" })), ["az-key"]);
  assert.deepEqual(presentedKeys(new Headers({ authorization: "Bearer a", "api-key": "b" })), ["a", "b"]);
  assert.deepEqual(presentedKeys(new Headers({ authorization: "Basic dXNlcjpwYXNz" })), []);
  assert.deepEqual(presentedKeys(new Headers({ authorization: "Bearer" })), []);
  assert.deepEqual(presentedKeys(new Headers({ "api-key": "  " })), []);
  assert.deepEqual(presentedKeys(new Headers()), []);
});

test("KeySet matches whole keys only, through their digests", () => {
  const keys = new KeySet(["alpha-key", "beta-key", ""]);
  assert.equal(keys.size, 2, "empty keys are ignored");
  assert.ok(keys.hasAny([keyDigest("beta-key")]));
  assert.ok(keys.hasAny([keyDigest("nope"), keyDigest("alpha-key")]));
  assert.ok(!keys.hasAny([keyDigest("alpha-ke")]));
  assert.ok(!keys.hasAny([keyDigest("alpha-key ")]));
  assert.ok(!keys.hasAny([]));
  assert.ok(!new KeySet([]).hasAny([keyDigest("")]));
});

test("operator routes, with and without /v1", () => {
  for (const path of ["/stats", "/v1/stats", "/metrics", "/v1/metrics"]) assert.ok(isAdminRoute("GET", path));
  assert.ok(isAdminRoute("DELETE", "/cache"));
  assert.ok(isAdminRoute("DELETE", "/v1/cache"));
  assert.ok(!isAdminRoute("GET", "/v1/models"));
  assert.ok(!isAdminRoute("POST", "/v1/chat/completions"));
});

test("the open-relay warning: only beyond loopback and only without client keys", () => {
  assert.equal(openRelayWarning("127.0.0.1", []), undefined);
  assert.equal(openRelayWarning("::1", []), undefined);
  assert.equal(openRelayWarning("localhost", []), undefined);
  assert.equal(openRelayWarning("0.0.0.0", ["k"]), undefined);
  assert.match(openRelayWarning("0.0.0.0", []) ?? "", /SECURITY WARNING: listening on 0\.0\.0\.0/);
  assert.match(openRelayWarning("10.1.2.3", []) ?? "", /api_keys/);
});
