/** Key parsing, constant-time matching and the open-relay warning, without a server. */

import assert from "node:assert/strict";
import { parseConfig } from "../../../src/config/parse.ts";
import {
  identify,
  isAdminRoute,
  isKeyAdminRoute,
  openRelayWarning,
  presentedKeys,
} from "../../../src/http/middleware/auth.ts";
import { KeyRegistry } from "../../../src/keys/registry.ts";
import { createLogger } from "../../../src/logger.ts";
import { MemoryStore } from "../../../src/store/memory.ts";
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

test("a WebSocket upgrade presents the key of its openai-insecure-api-key subprotocol; other requests do not", () => {
  const protocols = "realtime, openai-insecure-api-key.sk-web,openai-beta.realtime-v1";
  const upgrade = { upgrade: "WebSocket", "sec-websocket-protocol": protocols };
  assert.deepEqual(presentedKeys(new Headers(upgrade)), ["sk-web"]);
  assert.deepEqual(presentedKeys(new Headers({ ...upgrade, authorization: "Bearer a" })), ["a", "sk-web"]);
  assert.deepEqual(presentedKeys(new Headers({ "sec-websocket-protocol": protocols })), []);
  assert.deepEqual(
    presentedKeys(
      new Headers({ upgrade: "websocket", "sec-websocket-protocol": "openai-insecure-api-key." }),
    ),
    [],
  );
});

test("identify: whole keys only, from the Bearer token or api-key; named, flat and admin keys", () => {
  const yaml = [
    "model_groups: [{model_group: g, models: [{model: m, params: {base_url: http://127.0.0.1:1, api_key: x}}]}]",
    "general_settings: {api_keys: [alpha-key], admin_keys: [boss-key]}",
    "keys: [{name: team-a, key: team-key}]",
  ].join("\n");
  const registry = new KeyRegistry(parseConfig(yaml, "t.yaml", () => undefined), {
    store: new MemoryStore(),
    logger: createLogger({ level: "error", write: () => {} }),
  });
  const who = (headers: Record<string, string>) => identify(registry, new Headers(headers))?.name;
  assert.equal(who({ authorization: "Bearer team-key" }), "team-a");
  assert.equal(who({ "api-key": "alpha-key" }), "api_keys[0]");
  assert.equal(who({ authorization: "Bearer nope", "api-key": "boss-key" }), "admin");
  assert.equal(who({ authorization: "Bearer alpha-ke" }), undefined);
  assert.equal(who({ authorization: "Bearer team-key " }), "team-a", "surrounding spaces are not part of it");
  assert.equal(who({}), undefined);
  assert.ok(registry.clientKeysRequired && registry.hasAdminKeys);
  assert.deepEqual(registry.list().map((policy) => policy.name), ["team-a"]);
});

test("operator routes, with and without /v1", () => {
  for (const path of ["/stats", "/v1/stats", "/metrics", "/v1/metrics"]) assert.ok(isAdminRoute("GET", path));
  assert.ok(isAdminRoute("DELETE", "/cache"));
  assert.ok(isAdminRoute("DELETE", "/v1/cache"));
  assert.ok(!isAdminRoute("GET", "/v1/models"));
  assert.ok(!isAdminRoute("POST", "/v1/chat/completions"));
  assert.ok(isKeyAdminRoute("/admin/keys") && isKeyAdminRoute("/v1/admin/usage"));
  assert.ok(!isKeyAdminRoute("/v1/models"));
});

test("the open-relay warning: only beyond loopback and only without client keys", () => {
  assert.equal(openRelayWarning("127.0.0.1", false), undefined);
  assert.equal(openRelayWarning("::1", false), undefined);
  assert.equal(openRelayWarning("localhost", false), undefined);
  assert.equal(openRelayWarning("0.0.0.0", true), undefined);
  assert.match(openRelayWarning("0.0.0.0", false) ?? "", /SECURITY WARNING: listening on 0\.0\.0\.0/);
  assert.match(openRelayWarning("10.1.2.3", false) ?? "", /api_keys/);
});
