/**
 * The recorder decodes each event's bytes once and reads its fields from that text (`sse/text_fields.ts`): the
 * fields must be what the byte scanner reads, the recording byte for byte the stream however it was cut, and bytes
 * that are not UTF-8 never recorded, also when they are cut across chunks.
 */

import assert from "node:assert/strict";
import { SseRecorder } from "../../src/cache/record.ts";
import { SseScanner } from "../../src/sse/scanner.ts";
import { TextFields } from "../../src/sse/text_fields.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const bytes = (value: string) => encoder.encode(value);
const BOM = "\uFEFF";

/** Each a whole event; the fields read from its text must be the scanner's. */
const EVENTS = [
  "data: [DONE]\n\n",
  "data:[DONE]\r\n\r\n",
  "data:  two spaces\r\r",
  "data\n\n",
  "data:\ndata\ndata: x\n\n",
  ": comment\ndata: a\r\n: more: colons\rdata: b\n\n",
  "event: response.completed\ndata: {}\n\n",
  "event\nevent:x\nevent: y\n\n",
  "Data: no\nevent : no\ndatax: no\n:data: no\n\n",
  'data: {"content":"héllo 👋 日本 \uFFFD"}\n\n',
  `data: ${BOM}[DONE]\n\n`,
  `data:${BOM}${BOM}x\n\n`,
  `event: ${BOM}done\ndata: ${BOM}\n\n`,
  `${BOM}data: [DONE]\n\n`,
  `${BOM}: comment\ndata: a\n\n`,
  `${BOM}\ndata: after a BOM line\n\n`,
  "id: 1\nretry: 5\ndata: a:b: c\n\n",
];

test("TextFields reads from the text the fields the scanner reads from the bytes", () => {
  const fields = new TextFields();
  const decoder = new TextDecoder("utf-8", { fatal: true });
  for (const source of EVENTS) {
    const raw = bytes(source);
    const scanner = new SseScanner();
    const [event, ...more] = [...scanner.push(raw), ...scanner.end().events]; // a last `\r` ends its event at the end
    assert.equal(more.length, 0, source);
    fields.read(decoder.decode(raw), raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf);
    assert.deepEqual(
      { event: fields.event, data: fields.data },
      { event: event.event, data: event.data },
      source,
    );
  }
});

/** Feeds `stream` through a recorder in pieces cut at `cuts`, each piece a view of one reused buffer. */
function record(stream: Uint8Array, cuts: number[]) {
  const recorder = new SseRecorder("chat", 1 << 20);
  const reused = new Uint8Array(stream.length);
  let last = 0;
  for (const cut of [...cuts, stream.length]) {
    reused.set(stream.subarray(last, cut), last);
    recorder.push(reused.subarray(last, cut));
    reused.fill(0x2e, last, cut); // the reader's buffer is written over once the chunk was handed on
    last = cut;
  }
  const recording = recorder.finish();
  return { recording, spoiled: recorder.spoiled };
}

const CHAT_EVENTS = [
  'data: {"choices":[{"delta":{"content":"é"}}]}\r\n\r\n',
  'data: {"choices":[{"delta":{"content":"€ 日本"}}]}\n\n',
  ": keep-alive 👋\n\n",
  'data: {"choices":[{"delta":{"content":"👋\uFFFD"}}]}\r\r',
  `data: {"choices":[{"delta":{"content":"${BOM}x"}}],\ndata: "more":1}\n\n`,
  "data: [DONE]\n\n",
];
const CHAT = bytes(CHAT_EVENTS.join(""));

test("the recording is the stream byte for byte, cut at every byte (multi-byte characters, a U+FFFD, CR-LF)", () => {
  const cuts = [[], ...Array.from({ length: CHAT.length - 1 }, (_, i) => [i + 1])];
  cuts.push(Array.from({ length: CHAT.length - 1 }, (_, i) => i + 1));
  for (const at of cuts) {
    const { recording, spoiled } = record(CHAT, at);
    assert.equal(spoiled, null, `cut at ${at}`);
    assert.deepEqual(recording?.events, CHAT_EVENTS, `cut at ${at}`);
    assert.equal(recording?.bytes, CHAT.length);
  }
});

test("bytes that are not UTF-8, cut at every byte, are never recorded", () => {
  const bad = [
    [0x80],
    [0xff],
    [0xe2, 0x82], // a character cut short, ASCII after it
    [0xc0, 0xaf], // overlong
    [0xed, 0xa0, 0x80], // a surrogate
    [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
    [0xef, 0xbb], // a BOM cut short
  ];
  for (const sequence of bad) {
    for (const place of ["answer", "comment", "end of event"]) {
      const event = place === "answer"
        ? [...bytes('data: {"content":"a'), ...sequence, ...bytes('b"}\n\n')]
        : place === "comment"
        ? [...bytes(": "), ...sequence, ...bytes("\n\n")]
        : [...bytes("data: x"), ...sequence, ...bytes("\n\n")];
      const stream = new Uint8Array([
        ...bytes('data: {"content":"日本"}\n\n'),
        ...event,
        ...bytes("data: [DONE]\n\n"),
      ]);
      for (let cut = 0; cut < stream.length; cut++) {
        const { recording, spoiled } = record(stream, cut === 0 ? [] : [cut]);
        assert.equal(recording, null);
        assert.equal(spoiled, "not_utf8", `${sequence} in the ${place}, cut at ${cut}`);
      }
    }
  }
});

test("a BOM first in an event is part of its first field's name; one first in a value is dropped", () => {
  const answer = 'data: {"content":"a"}\n\n';
  // `\uFEFFdata: [DONE]` is no data field (the byte scanner reads the name `\uFEFFdata`): no terminal event.
  assert.equal(record(bytes(`${answer}${BOM}data: [DONE]\n\n`), []).spoiled, "no_terminal_event");
  const valued = `${answer}data: ${BOM}[DONE]\n\n`;
  const { recording } = record(bytes(valued), []);
  assert.deepEqual(recording?.events, [answer, `data: ${BOM}[DONE]\n\n`]);
  // Kept, though: the recording is the stream byte for byte (its replay must not make `data:` of `\uFEFFdata:`).
  const kept = `${answer}${BOM}: comment\n\n${BOM}data: x\r\n\r\ndata: [DONE]\n\n`;
  for (const cuts of [[], [answer.length + 1], [answer.length + 2, answer.length + 20]]) {
    const text = record(bytes(kept), cuts).recording?.events.join("");
    assert.equal(text, kept, `cut at ${cuts}`);
  }
});

test("chunks of whole events (read without the scanner) record what the scanner's cuts record", () => {
  const bad = new Uint8Array([...bytes('data: {"x":"'), 0xff, 0x0a, 0xc3, ...bytes('"}\n\n')]);
  const pieces: Uint8Array[] = [
    ...EVENTS.map(bytes),
    bytes("\n"),
    bytes("data: a\n\n\n"),
    bytes("data: b\n\n\r\n"),
    bytes(`data: {"content":"${BOM}日本"}\n\n`),
    bytes('data: {"error":{"message":"x"}}\n\n'),
    bad,
  ];
  let seed = 11;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let round = 0; round < 600; round++) {
    const chosen: Uint8Array[] = [];
    const count = 1 + Math.floor(random() * 6);
    for (let i = 0; i < count; i++) {
      const piece = pieces[Math.floor(random() * pieces.length)];
      if (piece !== bad || random() < 0.3) chosen.push(piece);
    }
    chosen.push(bytes('data: {"choices":[]}\n\n'), bytes("data: [DONE]\n\n"));
    const stream = new Uint8Array(chosen.reduce((sum, piece) => sum + piece.length, 0));
    const cuts: number[] = [];
    let at = 0;
    for (const piece of chosen) {
      stream.set(piece, at);
      at += piece.length;
      if (random() < 0.6) cuts.push(at); // else the next event comes in the same chunk
    }
    if (cuts.at(-1) === stream.length) cuts.pop();
    const label = JSON.stringify(new TextDecoder().decode(stream));
    const whole = record(stream, cuts);
    const byByte = record(stream, Array.from({ length: stream.length - 1 }, (_, i) => i + 1));
    assert.deepEqual(whole, byByte, label);
    if (whole.recording) {
      const text = whole.recording.events.join("");
      assert.equal(whole.recording.textBytes, bytes(text).length, label);
    } else assert.ok(chosen.includes(bad) || whole.spoiled !== null, label);
  }
});
