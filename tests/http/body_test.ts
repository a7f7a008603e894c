import assert from "node:assert/strict";
import { ProxyError } from "../../src/errors.ts";
import { readBodyText } from "../../src/http/body.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

/** A request whose body sends its first bytes and then nothing; `cancelled` tells whether the upload was cut. */
function stalledRequest(headers: Record<string, string> = {}) {
  const state = { cancelled: false };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode('{"model":'));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  const request = new Request("http://127.0.0.1/v1/chat/completions", { method: "POST", body, headers });
  return { request, state };
}

test("a body that stops arriving gets a 408 after the deadline, with or without a declared length", async () => {
  for (const headers of [{}, { "content-length": "100" }] as Record<string, string>[]) {
    const { request, state } = stalledRequest(headers);
    const started = Date.now();
    await assert.rejects(
      readBodyText(request, 1024, 50),
      (error: unknown) =>
        error instanceof ProxyError && error.status === 408 && error.code === "request_timeout",
    );
    assert.ok(Date.now() - started < 1000);
    // A body of unknown length is read through a reader, which is cancelled (Deno then closes the connection).
    if (!("content-length" in headers)) assert.ok(state.cancelled, "the upload is cancelled");
  }
});

test("a body within the deadline and the limit is read whole; over the limit is a 413", async () => {
  const make = (text: string) => new Request("http://127.0.0.1/", { method: "POST", body: text });
  assert.equal(await readBodyText(make('{"a":1}'), 1024, 1000), '{"a":1}');
  await assert.rejects(
    readBodyText(make("x".repeat(2000)), 1024, 1000),
    (error: unknown) => error instanceof ProxyError && error.status === 413,
  );
});

test("a body that is not UTF-8 is a 400; U+FFFD and a byte order mark as UTF-8 are read as such", async () => {
  const make = (bytes: Uint8Array<ArrayBuffer>) =>
    new Request("http://127.0.0.1/", {
      method: "POST",
      body: bytes,
      headers: { "content-length": String(bytes.length) },
    });
  const invalidJson = (error: unknown) =>
    error instanceof ProxyError && error.status === 400 && error.code === "invalid_json";
  // A lone continuation byte, a truncated sequence, an overlong encoding: each refused, not passed on as U+FFFD.
  for (const bad of [[0x80], [0xe2, 0x9c], [0xc0, 0xaf]]) {
    await assert.rejects(readBodyText(make(new Uint8Array([0x22, ...bad, 0x22])), 1024, 1000), invalidJson);
  }
  // U+FFFD sent as its own UTF-8 bytes is text like any other.
  assert.equal(
    await readBodyText(make(encoder.encode('{"a":"\uFFFD \u00e9"}')), 1024, 1000),
    '{"a":"\uFFFD \u00e9"}',
  );
  // A leading byte order mark is dropped, as a strict decoder drops it.
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...encoder.encode('{"a":1}')]);
  assert.equal(await readBodyText(make(bom), 1024, 1000), '{"a":1}');
});
