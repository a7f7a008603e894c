/**
 * A config error never shows what may be a secret: an upstream header's value (a cookie, a custom auth header whose
 * name says nothing) or a `default_query` value (a signature), whatever the header or parameter is called.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/parse.ts";
import { test } from "../_support/test.ts";

/** A config with one endpoint, its `base_url` and any more `params` lines. */
function configWith(baseUrl: string, params = ""): string {
  return [
    "model_groups:",
    "  - model_group: g",
    "    models:",
    "      - model: m",
    "        params:",
    `          base_url: ${baseUrl}`,
    "          api_key: sk-test",
    params,
  ].join("\n") + "\n";
}

function problem(params: string): string {
  try {
    parseConfig(configWith("https://api.example", params), "test.yaml", () => undefined);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("loaded");
}

test("an upstream header's or default_query's bad value is named, its text never shown", () => {
  const cookie = problem('          headers: {Cookie: "session=HEADERSECRET\\n"}');
  assert.match(cookie, /params\.headers\.Cookie must not contain control characters/);
  assert.ok(!cookie.includes("HEADERSECRET"), cookie);
  const custom = problem('          default_headers: {x-custom: "HEADERSECRET\\u0001"}');
  assert.match(custom, /params\.default_headers\.x-custom must not contain control characters/);
  assert.ok(!custom.includes("HEADERSECRET"), custom);
  const query = problem('          default_query: {sig: "QUERYSECRET\\u0001"}');
  assert.match(query, /params\.default_query\.sig must not contain control characters/);
  assert.ok(!query.includes("QUERYSECRET"), query);
});

test("a URL's fragment is not shown either (an access token pasted with it)", () => {
  const yaml = configWith('"https://api.example/v1#access_token=FRAGSECRET"');
  assert.throws(
    () => parseConfig(yaml, "test.yaml", () => undefined),
    (error: Error) =>
      /must not contain a query or fragment/.test(error.message) && !error.message.includes("FRAGSECRET"),
  );
});
