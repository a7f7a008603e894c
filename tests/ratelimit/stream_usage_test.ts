/**
 * Finding the usage a stream reports, with its events cut anywhere across chunks: the chat usage chunk, the
 * Responses `response.completed`, spaced or multi-line JSON; every `"usage":null` before it is not a report.
 */

import assert from "node:assert/strict";
import { StreamUsage } from "../../src/ratelimit/stream_usage.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

function usageOf(text: string, size: number): StreamUsage {
  const bytes = encoder.encode(text);
  const watcher = new StreamUsage();
  for (let at = 0; at < bytes.length; at += size) watcher.push(bytes.slice(at, at + size));
  return watcher;
}

const chunk = (content: string) =>
  `data: {"id":"c","model":"gpt-x","choices":[{"index":0,"delta":{"content":"${content}"}}],"usage":null}\n\n`;

test("a chat stream's usage chunk is found wherever the stream is cut; the usage:null chunks are not reports", () => {
  const stream = chunk("usage") + chunk("Hel") +
    'data: {"id":"c","model":"gpt-x-2024","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n' +
    "data: [DONE]\n\n";
  for (const size of [1, 3, 16, 100, stream.length]) {
    const watcher = usageOf(stream, size);
    assert.deepEqual(
      watcher.usage,
      { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
      `size ${size}`,
    );
    assert.equal(watcher.tokens, 5);
    assert.equal(watcher.model, "gpt-x-2024");
  }
  const none = usageOf(chunk("a") + chunk("b") + "data: [DONE]\n\n", 7);
  assert.equal(none.usage, undefined);
  assert.equal(none.tokens, undefined);
});

test("Responses, spaced JSON, CRLF and multi-line data are read as the SSE spec joins them", () => {
  const responses =
    'event: response.in_progress\ndata: {"type":"response.in_progress","response":{"usage":null}}\n\n' +
    'event: response.completed\r\ndata: {"type":"response.completed","response":{"model":"m1",\r\n' +
    'data: "usage":{"input_tokens":4,"output_tokens":6,"total_tokens":10}}}\r\n\r\n';
  for (const size of [1, 5, responses.length]) {
    const watcher = usageOf(responses, size);
    assert.equal(watcher.tokens, 10, `size ${size}`);
    assert.equal(watcher.model, "m1");
  }
  const spaced = 'data: { "usage" : { "total_tokens" : 7 } }\n\n';
  assert.equal(usageOf(spaced, 2).tokens, 7);
  const spacedNull = 'data: { "usage" : null }\n\n';
  assert.equal(usageOf(spacedNull, 2).usage, undefined);
  // The last report wins.
  assert.equal(
    usageOf('data: {"usage":{"total_tokens":1}}\n\ndata: {"usage":{"total_tokens":2}}\n\n', 4).tokens,
    2,
  );
});
