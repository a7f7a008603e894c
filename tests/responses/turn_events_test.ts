/**
 * The Responses events a turn's record needs, found on the bytes: exactly the `response.created` and
 * `response.completed` events the full scanner finds (by their `event:` line, or by the type in their data when a
 * stream sends no event lines), with the same fields, however the stream is cut and whatever its line breaks.
 */

import assert from "node:assert/strict";
import { SseScanner } from "../../src/sse/scanner.ts";
import { TurnEvents } from "../../src/responses/turn_events.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

function stream(eventLines: boolean, lineBreak: string): string {
  const events = [
    ["response.created", { type: "response.created", response: { id: "resp_1", status: "in_progress" } }],
    ["response.in_progress", { type: "response.in_progress", response: { id: "resp_1" } }],
    ...Array.from({ length: 5 }, (_, i) => [
      "response.output_text.delta",
      { type: "response.output_text.delta", delta: `tok${i} response.created? no: response.` },
    ]),
    ["response.completed", { type: "response.completed", response: { id: "resp_1", status: "completed" } }],
  ] as const;
  return events.map(([name, data]) =>
    (eventLines ? `event: ${name}${lineBreak}` : "") + `data: ${JSON.stringify(data)}${lineBreak}${lineBreak}`
  ).join("") + `: comment naming response.completed${lineBreak}${lineBreak}`;
}

/** What the observer took before: every event with its fields, kept when its type is one of the two. */
function expected(text: string): { type: string; data: string }[] {
  const scanner = new SseScanner();
  const events = [...scanner.push(encoder.encode(text)), ...scanner.end().events];
  return events.filter((event) => {
    if (event.data === null) return false;
    const type = event.event ??
      (event.data.includes('"response.created"')
        ? "response.created"
        : event.data.includes('"response.completed"')
        ? "response.completed"
        : null);
    return type === "response.created" || type === "response.completed";
  }).map(({ event, data }) => ({ type: event ?? JSON.parse(data!).type, data: data! }));
}

function found(text: string, cut: number): { type: string; data: string }[] {
  const bytes = encoder.encode(text);
  const turn = new TurnEvents();
  const events: { type: string; data: string }[] = [];
  for (let at = 0; at < bytes.length; at += cut) events.push(...turn.push(bytes.subarray(at, at + cut)));
  return events.map(({ type, data }) => ({ type, data }));
}

test("the created and completed events, and only they, with their fields, however the stream is cut", () => {
  for (const eventLines of [true, false]) {
    for (const lineBreak of ["\n", "\r\n", "\r"]) {
      const text = stream(eventLines, lineBreak);
      const want = expected(text);
      assert.equal(want.length, 2);
      for (const cut of [1, 2, 3, 7, 64, text.length]) {
        assert.deepEqual(
          found(text, cut),
          want,
          `event lines ${eventLines}, ${JSON.stringify(lineBreak)}, cut ${cut}`,
        );
      }
    }
  }
});

test("chunks of whole events are searched whole; one that ends an event begun before is cut into events", () => {
  const text = stream(true, "\n");
  const want = expected(text);
  const events = text.split(/(?<=\n\n)/);
  const one = new TurnEvents();
  assert.deepEqual(
    events.flatMap((event) => [...one.push(encoder.encode(event))]),
    want,
    "one event a chunk",
  );
  // The completed event's end comes alone: a chunk that ends in a blank line but names neither type.
  const completed = events.findIndex((event) => event.startsWith("event: response.completed"));
  const cut = events[completed].length - 5;
  const pieces = [
    ...events.slice(0, completed),
    events[completed].slice(0, cut),
    events[completed].slice(cut),
  ];
  const split = new TurnEvents();
  assert.deepEqual(pieces.flatMap((piece) => [...split.push(encoder.encode(piece))]), want, "its end alone");
});
