import assert from "node:assert/strict";
import { ProxyError } from "../../src/errors.ts";
import { readBodyText } from "../../src/http/body.ts";

const encoder = new TextEncoder();

Deno.test("a body that stops arriving gets a 408 after the deadline", async () => {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode('{"model":'));
    },
    cancel() {
      cancelled = true;
    },
  });
  const request = new Request("http://127.0.0.1/v1/chat/completions", { method: "POST", body });
  const started = Date.now();
  await assert.rejects(
    readBodyText(request, 1024, 50),
    (error: unknown) =>
      error instanceof ProxyError && error.status === 408 && error.code === "request_timeout",
  );
  assert.ok(Date.now() - started < 1000);
  assert.ok(cancelled, "the upload is cancelled");
});

Deno.test("a body with a declared length that stops arriving gets a 408 after the deadline too", async () => {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode('{"model":'));
    },
  });
  const request = new Request("http://127.0.0.1/v1/chat/completions", {
    method: "POST",
    body,
    headers: { "content-length": "100" },
  });
  const started = Date.now();
  await assert.rejects(
    readBodyText(request, 1024, 50),
    (error: unknown) =>
      error instanceof ProxyError && error.status === 408 && error.code === "request_timeout",
  );
  assert.ok(Date.now() - started < 1000);
});

Deno.test("a body within the deadline and the limit is read whole; over the limit is a 413", async () => {
  const make = (text: string) => new Request("http://127.0.0.1/", { method: "POST", body: text });
  assert.equal(await readBodyText(make('{"a":1}'), 1024, 1000), '{"a":1}');
  await assert.rejects(
    readBodyText(make("x".repeat(2000)), 1024, 1000),
    (error: unknown) => error instanceof ProxyError && error.status === 413,
  );
});
