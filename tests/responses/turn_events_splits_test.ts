/**
 * The Responses observer (`TurnEvents`) finds the same `response.created` and `response.completed` events at every
 * pair of cuts of a stream, so each chunk boundary meets every place of its whole-events shortcut (a chunk that
 * ends in a blank line while no event is open is searched whole): inside `response.c`, between CR and LF, after the
 * first `\n` of a blank line, the completed event last.
 */

import assert from "node:assert/strict";
import { TurnEvents } from "../../src/responses/turn_events.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

const text = (eol: string, eventLines: boolean) =>
  [
    ["response.created", '{"type":"response.created","response":{"id":"r1"}}'],
    ["response.output_text.delta", '{"type":"response.output_text.delta","delta":"response.c"}'],
    ["response.completed", '{"type":"response.completed","response":{"id":"r1","usage":{"total_tokens":3}}}'],
  ].map(([name, data]) => (eventLines ? `event: ${name}${eol}` : "") + `data: ${data}${eol}${eol}`).join("");

const seen = (turn: TurnEvents, chunks: Uint8Array[]) =>
  chunks.flatMap((chunk) => [...turn.push(chunk)]).map(({ type, data }) => `${type} ${data}`);

test("the turn's events are the same at every pair of cuts", () => {
  for (const eol of ["\n", "\r\n"]) {
    for (const eventLines of [true, false]) {
      const bytes = encoder.encode(text(eol, eventLines));
      const want = seen(new TurnEvents(), [bytes.slice()]);
      assert.equal(want.length, 2);
      for (let a = 0; a <= bytes.length; a++) {
        for (let b = a; b <= bytes.length; b++) {
          const parts = [bytes.slice(0, a), bytes.slice(a, b), bytes.slice(b)].filter((part) =>
            part.length > 0
          );
          const got = seen(new TurnEvents(), parts);
          if (JSON.stringify(got) !== JSON.stringify(want)) {
            assert.deepEqual(got, want, `${JSON.stringify(eol)} ${eventLines}: cut at ${a} and ${b}`);
          }
        }
      }
    }
  }
});
