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

test("chunks of whole events are searched whole; one that ends an event begun before is cut into events", () => {
  const report = 'data: {"id":"c","choices":[],"usage":{"prompt_tokens":1,"total_tokens":4}}\n\n';
  const events = [chunk("a"), chunk("usage"), report, "data: [DONE]\n\n"];
  const watcher = new StreamUsage();
  for (const event of events) watcher.push(encoder.encode(event));
  assert.equal(watcher.tokens, 4);
  // The usage event's end comes in a chunk of its own that ends in a blank line but names no usage.
  const cut = report.length - 3;
  for (
    const pieces of [[report.slice(0, cut), report.slice(cut)], [
      chunk("b") + report.slice(0, 40),
      report.slice(40),
    ]]
  ) {
    const split = new StreamUsage();
    for (const piece of pieces) split.push(encoder.encode(piece));
    assert.equal(split.tokens, 4, JSON.stringify(pieces));
  }
  // Two whole events in one chunk, the report second.
  const two = new StreamUsage();
  two.push(encoder.encode(chunk("c") + report));
  assert.equal(two.tokens, 4);
});

test("a usage event that the stream's last byte completes (a final CR) is read at the end", () => {
  const stream = 'data: {"model":"m","choices":[],"usage":{"total_tokens":9}}\r\r';
  for (const size of [1, 4, stream.length]) {
    const watcher = usageOf(stream, size);
    assert.equal(watcher.tokens, undefined, "a final CR may still be the first half of CR LF");
    watcher.end();
    assert.equal(watcher.tokens, 9, `size ${size}`);
    assert.equal(watcher.model, "m");
  }
  const cut = usageOf('data: {"usage":{"total_tokens":3}}\n', 5);
  cut.end();
  assert.equal(cut.usage, undefined, "an event the stream cut before its blank line is no report");
});
