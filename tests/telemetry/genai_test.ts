/** GenAI names and answer facts: JSON answers of each API, and streams fed in awkwardly split chunks. */

import assert from "node:assert/strict";
import { operationName, providerName, readAnswer, StreamFacts } from "../../src/telemetry/genai.ts";
import { tracingWanted } from "../../src/telemetry/wanted.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

/** Feeds `text` one awkward piece at a time: every 7 bytes, so lines, JSON and \r\n pairs are split. */
function feed(text: string): StreamFacts {
  const facts = new StreamFacts();
  const bytes = encoder.encode(text);
  for (let i = 0; i < bytes.length; i += 7) facts.push(bytes.slice(i, i + 7));
  return facts;
}

test("genai: operation and provider names", () => {
  assert.equal(operationName("chat/completions"), "chat");
  assert.equal(operationName("responses"), "chat");
  assert.equal(operationName("embeddings"), "embeddings");
  assert.equal(providerName("openai"), "openai");
  assert.equal(providerName("azure"), "azure.ai.openai");
});

test("genai: model, id and usage from Chat Completions, Responses and Embeddings answers", () => {
  assert.deepEqual(
    readAnswer({ id: "chatcmpl-1", model: "gpt-4o", usage: { prompt_tokens: 3, completion_tokens: 5 } }),
    { responseId: "chatcmpl-1", responseModel: "gpt-4o", inputTokens: 3, outputTokens: 5 },
  );
  assert.deepEqual(readAnswer({ id: "resp_1", model: "m", usage: { input_tokens: 2, output_tokens: 4 } }), {
    responseId: "resp_1",
    responseModel: "m",
    inputTokens: 2,
    outputTokens: 4,
  });
  assert.deepEqual(readAnswer({ model: "e", usage: { prompt_tokens: 7, total_tokens: 7 } }), {
    responseModel: "e",
    inputTokens: 7,
  });
  assert.deepEqual(readAnswer("not an object"), {});
  assert.deepEqual(readAnswer({ usage: { prompt_tokens: -1, completion_tokens: "5" } }), {});
});

test("genai: a Chat Completions stream split anywhere gives its model, id and usage chunk", () => {
  const frames = [
    'data: {"id":"chatcmpl-9","model":"gpt-4o-2024","choices":[{"delta":{"content":"hi \\"usage\\""}}],"usage":null}',
    'data: {"id":"chatcmpl-9","model":"gpt-4o-2024","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":22}}',
    "data: [DONE]",
  ];
  assert.deepEqual(feed(frames.join("\r\n\r\n") + "\r\n\r\n").facts, {
    responseId: "chatcmpl-9",
    responseModel: "gpt-4o-2024",
    inputTokens: 11,
    outputTokens: 22,
  });
});

test("genai: a Responses stream gives the facts of response.completed", () => {
  const text = [
    "event: response.created",
    'data: {"type":"response.created","response":{"id":"resp_7","model":"gpt-4.1","usage":null}}',
    "",
    "event: response.output_text.delta",
    'data: {"type":"response.output_text.delta","delta":"x"}',
    "",
    "event: response.completed",
    'data: {"type":"response.completed","response":{"id":"resp_7","model":"gpt-4.1","usage":{"input_tokens":5,"output_tokens":6}}}',
    "",
    "",
  ].join("\n");
  assert.deepEqual(feed(text).facts, {
    responseId: "resp_7",
    responseModel: "gpt-4.1",
    inputTokens: 5,
    outputTokens: 6,
  });
});

test("genai: the code of a stream's closing error event, in either API's shape; none once more events follow", () => {
  const chat =
    'data: {"id":"c","choices":[]}\n\ndata: {"error":{"message":"m","type":"server_error","code":"upstream_stream_error"}}\n\n';
  assert.equal(feed(chat).errorCode, "upstream_stream_error");
  const responses = 'event: error\ndata: {"type":"error","code":"coalesced_stream_lost","message":"m"}\n\n';
  assert.equal(feed(responses).errorCode, "coalesced_stream_lost");
  assert.equal(feed(chat + "data: [DONE]\n\n").errorCode, undefined);
  assert.equal(feed('data: {"id":"c","choices":[]}\n\ndata: [DONE]\n\n').errorCode, undefined);
  assert.equal(feed('data: {"error": not json}\n\n').errorCode, undefined);
});

test("tracing is wanted only with OTEL_DENO on and the SDK not disabled", () => {
  const wanted = (env: Record<string, string>) => tracingWanted((name) => env[name]);
  assert.equal(wanted({}), false);
  assert.equal(wanted({ OTEL_DENO: "true" }), true);
  assert.equal(wanted({ OTEL_DENO: "1" }), true);
  assert.equal(wanted({ OTEL_DENO: "false" }), false);
  assert.equal(wanted({ OTEL_DENO: "true", OTEL_SDK_DISABLED: "true" }), false);
});
