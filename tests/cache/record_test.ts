import assert from "node:assert/strict";
import { type Recording, recordStream, type Unrecorded } from "../../src/cache/record.ts";
import type { Route } from "../../src/core/route.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Outcome {
  readonly passed: string;
  readonly recording: Recording | null;
  readonly incomplete: Unrecorded | null;
}

/** Feeds `bytes` cut at `cuts` through a recorder and reads everything that comes out. */
async function run(
  bytes: Uint8Array,
  cuts: number[],
  options: { route?: Route; maxBytes?: number } = {},
): Promise<Outcome> {
  let recording: Recording | null = null;
  let incomplete: Unrecorded | null = null;
  let calls = 0;
  const pieces: Uint8Array[] = [];
  let last = 0;
  for (const cut of [...cuts, bytes.length]) {
    pieces.push(bytes.slice(last, cut));
    last = cut;
  }
  const recorded = recordStream(ReadableStream.from(pieces), {
    route: options.route ?? "chat",
    maxBytes: options.maxBytes ?? 1 << 20,
    onComplete: (r) => {
      calls++;
      recording = r;
    },
    onIncomplete: (reason) => {
      calls++;
      incomplete = reason;
    },
  });
  const out = new Uint8Array(await new Response(recorded).arrayBuffer());
  assert.ok(calls <= 1, "reported once");
  return { passed: decoder.decode(out), recording, incomplete };
}

const text = (value: string) => encoder.encode(value);

// CRLF, a bare CR, a comment, a multi-line data event, JSON with multi-byte characters, then the terminal
// event.
const CHAT_EVENTS = [
  'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\r\n\r\n',
  ": keep-alive\n\n",
  'data: {"choices":[{"delta":{"content":"héllo 👋 \\"quoted\\""}}]}\n\n',
  'data: {"choices":[{"delta":{"reasoning_content":"hm"}}],\ndata: "usage":null}\r\r',
  'data: {"choices":[],"usage":{"total_tokens":7}}\n\n',
  "data: [DONE]\n\n",
];
const CHAT = CHAT_EVENTS.join("");

test("a whole chat stream passes through unchanged and is recorded event by event", async () => {
  const outcome = await run(text(CHAT), []);
  assert.equal(outcome.passed, CHAT);
  const size = text(CHAT).length;
  assert.deepEqual(outcome.recording, { events: CHAT_EVENTS, bytes: size, textBytes: size });
});

test("every single split point: \\r|\\n across chunks, JSON and multi-byte characters cut in two, [DO|NE]", async () => {
  const bytes = text(CHAT);
  for (let cut = 1; cut < bytes.length; cut++) {
    const outcome = await run(bytes, [cut]);
    assert.equal(outcome.passed, CHAT, `split at ${cut}`);
    assert.deepEqual(outcome.recording?.events, CHAT_EVENTS, `split at ${cut}`);
  }
});

test("one byte at a time, and awkward multi-cuts chosen on purpose", async () => {
  const bytes = text(CHAT);
  const everyByte = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
  assert.deepEqual((await run(bytes, everyByte)).recording?.events, CHAT_EVENTS);

  const crlf = CHAT.indexOf("\r\n");
  const midString = CHAT.indexOf("quoted");
  const emoji = bytes.indexOf(0xf0) + 2;
  const done = CHAT.indexOf("[DONE]") + 3;
  const cuts = [crlf + 1, midString, emoji, bytes.length - (CHAT.length - done)];
  const outcome = await run(bytes, cuts.sort((a, b) => a - b));
  assert.equal(outcome.passed, CHAT);
  assert.deepEqual(outcome.recording?.events, CHAT_EVENTS);
});

test("a \\r ending a blank line at a chunk's end, its \\n starting the next chunk", async () => {
  const stream = 'data: {"a":1}\r\n\r\ndata: [DONE]\r\n\r\n';
  const at = stream.indexOf("\r\n\r\n") + 3; // ...\r\n\r | \ndata
  const outcome = await run(text(stream), [at]);
  assert.deepEqual(outcome.recording?.events, ['data: {"a":1}\r\n\r\n', "data: [DONE]\r\n\r\n"]);
});

test("nothing is recorded without the terminal event, or with an error event, or empty", async () => {
  const cut = CHAT.slice(0, CHAT.indexOf("data: [DONE]"));
  assert.deepEqual(await run(text(cut), [5]), {
    passed: cut,
    recording: null,
    incomplete: "no_terminal_event",
  });

  const partialTerminal = CHAT.slice(0, -1); // "data: [DONE]\n": never ended by its blank line
  assert.equal((await run(text(partialTerminal), [])).incomplete, "no_terminal_event");

  // What the proxy sends when the upstream fails mid-stream.
  const failed = CHAT_EVENTS[0] + 'data: {"error":{"message":"cut","code":"upstream_stream_error"}}\n\n';
  assert.equal((await run(text(failed), [])).incomplete, "error_event");
  const errorThenDone = failed + "data: [DONE]\n\n";
  assert.equal((await run(text(errorThenDone), [])).incomplete, "error_event");

  assert.equal((await run(text("data: [DONE]\n\n"), [])).incomplete, "empty");
  assert.equal((await run(text(": only a comment\n\ndata: [DONE]\n\n"), [])).incomplete, "empty");
});

test("a stream over maxBytes passes through whole but is not recorded", async () => {
  const bytes = text(CHAT);
  const outcome = await run(bytes, [10, 20, 30], { maxBytes: bytes.length - 1 });
  assert.equal(outcome.passed, CHAT);
  assert.equal(outcome.recording, null);
  assert.equal(outcome.incomplete, "too_large");
  assert.ok((await run(bytes, [10], { maxBytes: bytes.length })).recording);
});

test("bytes that are not UTF-8 are passed through but not recorded", async () => {
  const bytes = new Uint8Array([...text('data: {"a":"'), 0xff, 0xfe, ...text('"}\n\ndata: [DONE]\n\n')]);
  const outcome = await run(bytes, [3]);
  assert.equal(outcome.incomplete, "not_utf8");
});

test("a stream cancelled by its reader reports nothing", async () => {
  let reported = false;
  const reader = recordStream(ReadableStream.from(CHAT_EVENTS.map(text)), {
    route: "chat",
    maxBytes: 1 << 20,
    onComplete: () => reported = true,
    onIncomplete: () => reported = true,
  }).getReader();
  await reader.read();
  await reader.cancel("client left");
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(reported, false);
});

test(
  "a reader that leaves after the terminal event leaves a whole answer: recorded, not after a partial event",
  {
    timeout: 5_000,
  },
  async () => {
    /** Reads `pieces` through a recorder until `[DONE]` is seen, then cancels (as the openai client does). */
    const leaveAtDone = async (pieces: string[]) => {
      let recording: Recording | null = null;
      let reports = 0;
      const reader = recordStream(
        new ReadableStream({ start: (c) => pieces.forEach((p) => c.enqueue(text(p))) }),
        {
          route: "chat",
          maxBytes: 1 << 20,
          onComplete: (r) => (reports++, recording = r),
          onIncomplete: () => reports++,
        },
      ).getReader();
      let seen = "";
      while (!seen.includes("[DONE]")) seen += decoder.decode((await reader.read()).value);
      await reader.cancel("client left");
      await new Promise((resolve) => setTimeout(resolve, 0));
      return { recording: recording as Recording | null, reports };
    };
    const whole = await leaveAtDone(CHAT_EVENTS);
    assert.equal(whole.reports, 1);
    assert.deepEqual(whole.recording?.events, CHAT_EVENTS);
    assert.equal(whole.recording?.bytes, text(CHAT).length);
    // Bytes of an event after [DONE] were in the same read: a replay would carry half an event, so none is kept.
    const partial = await leaveAtDone([...CHAT_EVENTS.slice(0, -1), 'data: [DONE]\n\ndata: {"x"']);
    assert.equal(partial.reports, 0);
    assert.equal(partial.recording, null);
  },
);

const RESPONSES_EVENTS = [
  'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1"}}\n\n',
  'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"hé"}\n\n',
  'event: response.completed\ndata: {"type":"response.completed","sequence_number":2,"response":{"id":"resp_1"}}\n\n',
];

test("Responses: complete at response.completed, named or data-only, split anywhere", async () => {
  const stream = RESPONSES_EVENTS.join("");
  const bytes = text(stream);
  for (let cut = 1; cut < bytes.length; cut += 7) {
    assert.deepEqual((await run(bytes, [cut], { route: "responses" })).recording?.events, RESPONSES_EVENTS);
  }
  const dataOnly = RESPONSES_EVENTS.map((event) => event.replace(/^event: .*\n/, ""));
  assert.deepEqual(
    (await run(text(dataOnly.join("")), [40], { route: "responses" })).recording?.events,
    dataOnly,
  );
  // [DONE] means nothing on this route.
  assert.equal(
    (await run(text(RESPONSES_EVENTS.slice(0, 2).join("") + "data: [DONE]\n\n"), [], { route: "responses" }))
      .incomplete,
    "no_terminal_event",
  );
});

test("Responses: failed, incomplete and error events are never recorded", async () => {
  for (const type of ["response.failed", "response.incomplete", "error"]) {
    const stream = RESPONSES_EVENTS[0] + `event: ${type}\ndata: {"type":"${type}"}\n\n` + RESPONSES_EVENTS[2];
    assert.equal((await run(text(stream), [], { route: "responses" })).incomplete, "error_event", type);
  }
});
