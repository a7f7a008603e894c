/** Azure content-filter refusals: a policy error in the OpenAI envelope, or another endpoint with the opt-in. */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

/** What Azure OpenAI answers when the prompt trips the deployment's content policy. */
const REFUSAL = {
  kind: "status" as const,
  status: 400,
  body: {
    error: {
      message:
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
      type: null,
      param: "prompt",
      code: "content_filter",
      status: 400,
      innererror: {
        code: "ResponsibleAIPolicyViolation",
        content_filter_result: {
          hate: { filtered: true, severity: "medium" },
          violence: { filtered: false, severity: "safe" },
        },
      },
    },
  },
};

const yaml = (a: string, b: string, fallback: boolean) =>
  groupYaml([endpointYaml(a, { name: "a", weight: 1 }), endpointYaml(b, { name: "b", weight: 0 })]).replace(
    "    models:",
    `    content_filter_fallback: ${fallback}\n    models:`,
  );

const messages = [{ role: "user" as const, content: "hi" }];

test("a content-filter refusal reaches the client as a policy error; the endpoint is not blamed", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(yaml(a.url, b.url, false));
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
  a.next(REFUSAL);
  const error = await client.chat.completions.create({ model: "gpt-test", messages }).catch((e) => e);
  assert.ok(error instanceof OpenAI.BadRequestError, String(error));
  assert.equal(error.code, "content_filter");
  assert.equal(error.param, "prompt");
  assert.equal(error.type, "invalid_request_error");
  assert.match(error.message, /content management policy/);
  assert.deepEqual(
    (error.error as { content_filter_result: unknown }).content_filter_result,
    REFUSAL.body.error.innererror.content_filter_result,
  );
  assert.equal(b.count(), 0);
  // Not the endpoint's failure: it serves the next request.
  const next = await client.chat.completions.create({ model: "gpt-test", messages }).withResponse();
  assert.equal(next.response.headers.get("x-llmproxy-endpoint"), "a");
});

test("content_filter_fallback: another endpoint serves; when every one refuses, the refusal comes back", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(yaml(a.url, b.url, true));
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
  a.next(REFUSAL);
  const served = await client.chat.completions.create({ model: "gpt-test", messages }).withResponse();
  assert.equal(served.response.headers.get("x-llmproxy-endpoint"), "b");
  assert.equal(served.response.headers.get("x-llmproxy-attempts"), "2");

  a.next(REFUSAL);
  b.next(REFUSAL);
  const error = await client.chat.completions.create({ model: "gpt-test", messages }).catch((e) => e);
  assert.ok(error instanceof OpenAI.BadRequestError, String(error));
  assert.equal(error.code, "content_filter");
  const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
  assert.match(
    metrics,
    /llmproxy_failovers_total\{group="gpt-test",endpoint="a",reason="content_filter"\} 2/,
  );
  // Neither endpoint was cooled down by refusals.
  const stats = await (await fetch(`${proxy.url}/stats`)).json();
  for (const endpoint of stats.endpoints) assert.equal(endpoint.state, "available");
});
