/**
 * A client body's UTF-8, on both reading paths (a declared length read whole; a body of unknown length read as a
 * stream, cut at every byte): what is not UTF-8 is a 400 `invalid_json` (never forwarded with U+FFFD in place of
 * its bytes), whatever the bad sequence and wherever the chunks split it; valid text reads as itself, a U+FFFD the
 * client sent and a character split across chunks included, and a leading byte order mark is dropped.
 */

import assert from "node:assert/strict";
import { ProxyError } from "../../src/errors.ts";
import { readBodyText } from "../../src/http/body.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const quoted = (bytes: number[]) =>
  new Uint8Array([...encoder.encode('{"a":"x'), ...bytes, ...encoder.encode('"}')]);

const BAD: Record<string, Uint8Array> = {
  "a lone continuation byte": quoted([0x80]),
  "0xff": quoted([0xff]),
  "a truncated 3-byte sequence": quoted([0xe2, 0x82]),
  "a truncated sequence at the very end": new Uint8Array([...encoder.encode('{"a":"x"}'), 0xf0, 0x9f, 0x98]),
  "an overlong slash": quoted([0xc0, 0xaf]),
  "an overlong 3-byte NUL": quoted([0xe0, 0x80, 0x80]),
  "a UTF-16 surrogate": quoted([0xed, 0xa0, 0x80]),
  "past U+10FFFF": quoted([0xf4, 0x90, 0x80, 0x80]),
  "a BOM then a bad byte": new Uint8Array([0xef, 0xbb, 0xbf, ...quoted([0xfe])]),
};

const GOOD: [string, Uint8Array, string][] = [
  ["U+FFFD sent as its bytes", encoder.encode('{"a":"\uFFFD"}'), '{"a":"\uFFFD"}'],
  ["4-byte and 3-byte characters", encoder.encode('{"a":"😀 € é"}'), '{"a":"😀 € é"}'],
  ["a leading BOM", new Uint8Array([0xef, 0xbb, 0xbf, ...encoder.encode('{"a":1}')]), '{"a":1}'],
  ["a BOM inside the text", encoder.encode('{"a":"\uFEFF"}'), '{"a":"\uFEFF"}'],
  [
    "NUL escaped and U+FFFD next to a BOM",
    encoder.encode('{"a":"\\u0000\uFEFF\uFFFD"}'),
    '{"a":"\\u0000\uFEFF\uFFFD"}',
  ],
];

const declared = (bytes: Uint8Array) =>
  new Request("http://127.0.0.1/", {
    method: "POST",
    body: bytes.slice(),
    headers: { "content-length": String(bytes.length) },
  });

/** A body of unknown length that arrives in two chunks cut at `cut`. */
const streamed = (bytes: Uint8Array, cut: number) =>
  new Request("http://127.0.0.1/", {
    method: "POST",
    body: ReadableStream.from([bytes.slice(0, cut), bytes.slice(cut)].filter((part) => part.length > 0)),
  });

const invalidJson = (error: unknown) =>
  error instanceof ProxyError && error.status === 400 && error.code === "invalid_json" &&
  /not valid UTF-8/.test(error.message);

test("bodies that are not UTF-8 are a 400 on both paths, however the chunks cut them", async () => {
  for (const [name, bytes] of Object.entries(BAD)) {
    await assert.rejects(readBodyText(declared(bytes), 1024, 5_000), invalidJson, name);
    for (let cut = 0; cut <= bytes.length; cut++) {
      await assert.rejects(
        readBodyText(streamed(bytes, cut), 1024, 5_000),
        invalidJson,
        `${name}, cut at ${cut}`,
      );
    }
  }
});

test("valid bodies read as themselves on both paths: U+FFFD, split characters, a byte order mark", async () => {
  for (const [name, bytes, text] of GOOD) {
    assert.equal(await readBodyText(declared(bytes), 1024, 5_000), text, name);
    for (let cut = 0; cut <= bytes.length; cut++) {
      assert.equal(await readBodyText(streamed(bytes, cut), 1024, 5_000), text, `${name}, cut at ${cut}`);
    }
  }
});
