/**
 * The usage watcher (`StreamUsage`) finds the same usage however a stream is cut: at every pair of byte offsets, so
 * each chunk boundary meets every place of the whole-events shortcut (a chunk that ends in a blank line while no
 * event is open is searched whole and not cut into events): mid-line, between CR and LF, after a lone `\n` of a
 * blank line, inside `"usage"`, and with the usage in the last event only.
 */

import assert from "node:assert/strict";
import { StreamUsage } from "../../src/ratelimit/stream_usage.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

const chunk = (content: string) =>
  `data: {"id":"c","model":"gpt-x","choices":[{"index":0,"delta":{"content":"${content}"}}],"usage":null}`;

const STREAMS: Record<string, { text: string; tokens: number | undefined }> = {
  "chat, LF": {
    text: [chunk("a"), chunk("b"), 'data: {"choices":[],"usage":{"total_tokens":5}}', "data: [DONE]"]
      .join("\n\n") + "\n\n",
    tokens: 5,
  },
  "chat, CRLF, usage last with no [DONE]": {
    text: [chunk("a"), 'data: {"choices":[],"usage":{"total_tokens":6}}'].join("\r\n\r\n") + "\r\n\r\n",
    tokens: 6,
  },
  // A final lone CR may be the first half of a CRLF: the usage event is read once a byte follows it.
  "chat, CR only": {
    text: [chunk("a"), 'data: {"choices":[],"usage":{"total_tokens":8}}', "data: [DONE]"].join("\r\r") +
      "\r\r",
    tokens: 8,
  },
  "mixed line ends: an LF blank line after a CRLF line": {
    text: `${chunk("a")}\r\n\n:comment\n\ndata: {"choices":[],"usage":{"total_tokens":9}}\r\n\n`,
    tokens: 9,
  },
  "mixed line ends: LF then CR-LF, CR-LF then CR, LF then CR, CR then CR-LF": {
    text: `${chunk("a")}\n\r\n${chunk("b")}\r\n\r${chunk("c")}\n\r` +
      'data: {"choices":[],"usage":{"total_tokens":4}}\r\r\ndata: [DONE]\n\r\n',
    tokens: 4,
  },
  "responses": {
    text: 'event: response.created\ndata: {"type":"response.created","response":{"usage":null}}\n\n' +
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"usage"}\n\n' +
      'event: response.completed\ndata: {"type":"response.completed","response":{"model":"m",' +
      '"usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3}}}\n\n',
    tokens: 3,
  },
  "no usage reported": {
    text: `${chunk("usage")}\n\n${chunk('\\"usage\\"')}\n\ndata: [DONE]\n\n`,
    tokens: undefined,
  },
};

test("the usage found is the same at every pair of cuts of the stream", () => {
  for (const [name, { text, tokens }] of Object.entries(STREAMS)) {
    const bytes = encoder.encode(text);
    const whole = new StreamUsage();
    whole.push(bytes.slice());
    assert.equal(whole.tokens, tokens, `${name}: whole`);
    for (let a = 0; a <= bytes.length; a++) {
      for (let b = a; b <= bytes.length; b++) {
        const watcher = new StreamUsage();
        for (const [from, to] of [[0, a], [a, b], [b, bytes.length]]) {
          if (to > from) watcher.push(bytes.slice(from, to));
        }
        if (watcher.tokens !== tokens) assert.fail(`${name}: cut at ${a} and ${b}: ${watcher.tokens}`);
      }
    }
  }
});
