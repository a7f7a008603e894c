import assert from "node:assert/strict";
import type { EndpointConfig } from "../../src/config/config.ts";
import { upstreamHeaders, upstreamUrl } from "../../src/upstream/providers.ts";
import { test } from "../_support/test.ts";

const endpoint = (overrides: Partial<EndpointConfig>): EndpointConfig => ({
  id: "e1",
  group: "g",
  model: "gpt-4o-mini",
  weight: 1,
  provider: "openai",
  baseUrl: "https://api.openai.com",
  apiKey: "sk-secret",
  timeoutMs: 1000,
  headers: {},
  ...overrides,
});

test("OpenAI URLs: /v1 added once", () => {
  assert.equal(upstreamUrl(endpoint({}), "chat/completions"), "https://api.openai.com/v1/chat/completions");
  assert.equal(
    upstreamUrl(endpoint({ baseUrl: "https://gw.example.com/v1" }), "responses"),
    "https://gw.example.com/v1/responses",
  );
});

test("Azure classic layout: deployment in the path, api-version in the query, responses without deployment", () => {
  const azure = endpoint({
    provider: "azure",
    baseUrl: "https://res.openai.azure.com",
    apiVersion: "2024-10-21",
    model: "my deploy/1",
  });
  assert.equal(
    upstreamUrl(azure, "chat/completions"),
    "https://res.openai.azure.com/openai/deployments/my%20deploy%2F1/chat/completions?api-version=2024-10-21",
  );
  assert.equal(
    upstreamUrl(azure, "embeddings"),
    "https://res.openai.azure.com/openai/deployments/my%20deploy%2F1/embeddings?api-version=2024-10-21",
  );
  // 2024-10-21 predates Responses in the classic layout: v1 (tests/upstream/azure_layout_test.ts).
  assert.equal(upstreamUrl(azure, "responses"), "https://res.openai.azure.com/openai/v1/responses");
  assert.equal(
    upstreamUrl({ ...azure, apiVersion: "2025-04-01-preview" }, "responses"),
    "https://res.openai.azure.com/openai/responses?api-version=2025-04-01-preview",
  );
});

test("Azure v1 layout when no api_version is set", () => {
  const azure = endpoint({ provider: "azure", baseUrl: "https://res.openai.azure.com" });
  assert.equal(
    upstreamUrl(azure, "chat/completions"),
    "https://res.openai.azure.com/openai/v1/chat/completions",
  );
  assert.equal(
    upstreamUrl(
      endpoint({ provider: "azure", baseUrl: "https://res.openai.azure.com/openai/v1" }),
      "responses",
    ),
    "https://res.openai.azure.com/openai/v1/responses",
  );
});

test("extra query parameters (default_query) are appended to every URL", () => {
  const azure = endpoint({
    provider: "azure",
    baseUrl: "https://res.openai.azure.com",
    query: { "api-version": "preview" },
  });
  assert.equal(
    upstreamUrl(azure, "responses"),
    "https://res.openai.azure.com/openai/v1/responses?api-version=preview",
  );
  const classic = endpoint({ provider: "azure", apiVersion: "2024-10-21", query: { foo: "a b" } });
  assert.match(upstreamUrl(classic, "chat/completions"), /\?api-version=2024-10-21&foo=a\+b$/);
});

test("upstream headers: only allowed client headers pass, endpoint key and extras set", () => {
  const client = new Headers({
    authorization: "Bearer client-key",
    "api-key": "client-azure-key",
    "openai-organization": "org-client",
    "openai-project": "proj-client",
    connection: "keep-alive, x-stainless-os",
    "cache-control": "no-cache",
    "x-llmproxy-debug": "1",
    "x-original-url": "/admin",
    via: "1.1 evil",
    "x-http-method-override": "DELETE",
    "user-agent": "OpenAI/JS 7",
    "openai-beta": "assistants=v2",
    "x-stainless-lang": "js",
    "x-stainless-os": "Linux",
  });
  const configured = { "X-Extra": "1", "OpenAI-Organization": "org-config" };
  const openai = new Headers(upstreamHeaders(endpoint({ headers: configured }), client, "req-1"));
  assert.equal(openai.get("authorization"), "Bearer sk-secret");
  assert.equal(openai.get("api-key"), null);
  assert.equal(openai.get("openai-organization"), "org-config", "only the endpoint's config picks it");
  assert.equal(openai.get("openai-project"), null);
  for (const name of ["x-original-url", "via", "x-http-method-override", "x-stainless-os"]) {
    assert.equal(openai.get(name), null, name);
  }
  assert.equal(openai.get("user-agent"), "OpenAI/JS 7");
  assert.equal(openai.get("openai-beta"), "assistants=v2");
  assert.equal(openai.get("x-stainless-lang"), "js");
  assert.equal(openai.get("x-extra"), "1");
  assert.equal(openai.get("connection"), null);
  assert.equal(openai.get("cache-control"), null);
  assert.equal(openai.get("x-llmproxy-debug"), null);
  assert.equal(openai.get("x-request-id"), "req-1");

  const azure = new Headers(upstreamHeaders(endpoint({ provider: "azure" }), client, "req-2"));
  assert.equal(azure.get("api-key"), "sk-secret");
  assert.equal(azure.get("authorization"), null);
});

test("connection failure messages never quote header values or URLs", async () => {
  const { connectionMessage } = await import("../../src/upstream/connection_message.ts");
  assert.equal(
    connectionMessage(new TypeError('Invalid header value: "Bearer sk-live-SECRET"')),
    "invalid upstream request headers",
  );
  const refused = connectionMessage(
    new TypeError("error sending request for url (https://user:pw@host/v1/chat): connection refused"),
  );
  assert.equal(refused, "connection refused");
});
