import assert from "node:assert/strict";
import type { EndpointConfig } from "../../src/config/config.ts";
import { upstreamUrl } from "../../src/upstream/providers.ts";
import { test } from "../_support/test.ts";

const azure = (apiVersion?: string, query?: Record<string, string>): EndpointConfig => ({
  id: "e1",
  group: "g",
  model: "gpt-4o-mini",
  weight: 1,
  provider: "azure",
  baseUrl: "https://res.openai.azure.com",
  apiKey: "k",
  timeoutMs: 1000,
  headers: {},
  ...(apiVersion ? { apiVersion } : {}),
  ...(query ? { query } : {}),
});

const BASE = "https://res.openai.azure.com/openai";

test("Azure: Responses routes take the v1 layout under an api_version that predates them there", () => {
  const old = azure("2024-02-15-preview");
  assert.equal(
    upstreamUrl(old, "chat/completions"),
    `${BASE}/deployments/gpt-4o-mini/chat/completions?api-version=2024-02-15-preview`,
  );
  assert.equal(
    upstreamUrl(old, "embeddings"),
    `${BASE}/deployments/gpt-4o-mini/embeddings?api-version=2024-02-15-preview`,
  );
  assert.equal(upstreamUrl(old, "responses"), `${BASE}/v1/responses`);
  assert.equal(upstreamUrl(old, "responses/resp_1"), `${BASE}/v1/responses/resp_1`);
  assert.equal(upstreamUrl(old, "responses/resp_1/input_items"), `${BASE}/v1/responses/resp_1/input_items`);
  assert.equal(upstreamUrl(old, "responses/resp_1/cancel"), `${BASE}/v1/responses/resp_1/cancel`);
  // The day before the classic Responses route: still v1. From that version on: classic, as configured.
  assert.equal(upstreamUrl(azure("2025-02-28"), "responses"), `${BASE}/v1/responses`);
  assert.equal(
    upstreamUrl(azure("2025-03-01-preview"), "responses"),
    `${BASE}/responses?api-version=2025-03-01-preview`,
  );
  assert.equal(
    upstreamUrl(azure("2025-04-01-preview"), "responses/r/input_items"),
    `${BASE}/responses/r/input_items?api-version=2025-04-01-preview`,
  );
  // default_query entries still travel; a route that merely starts with "responses" is not one of them.
  assert.equal(upstreamUrl(azure("2024-10-21", { x: "1" }), "responses"), `${BASE}/v1/responses?x=1`);
  assert.equal(upstreamUrl(azure("2024-10-21"), "responsesx"), `${BASE}/responsesx?api-version=2024-10-21`);
  // A version that is not dated (v1-style "preview") and no version at all: unchanged.
  assert.equal(upstreamUrl(azure("preview"), "responses"), `${BASE}/responses?api-version=preview`);
  assert.equal(upstreamUrl(azure(), "responses"), `${BASE}/v1/responses`);
  assert.equal(
    upstreamUrl(azure(undefined, { "api-version": "preview" }), "responses"),
    `${BASE}/v1/responses?api-version=preview`,
  );
});
