/**
 * A streamed answer's `Response` (stream_response.ts): headers that pass as they are go straight into the runtime's
 * header list and reach the client on the wire and through `response.headers`; any other header takes the
 * `Response` constructor as before (its value trimmed, a value that is not a byte string refused).
 */

import assert from "node:assert/strict";
import { streamResponse } from "../../src/http/stream_response.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const events = () =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode("data: one\n\n"));
      controller.close();
    },
  });

const HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "x-request-id": "req-1",
  "X-Mixed-Case": "kept",
  "x-tab": "a\tb",
  "x-latin1": "caf\u00e9",
  "x-empty": "",
};

test("a streamed answer's headers reach the client on the wire and through response.headers", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => streamResponse(events(), 201, HEADERS),
  );
  const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  assert.equal(response.status, 201);
  assert.equal(await response.text(), "data: one\n\n");
  for (const [name, value] of Object.entries(HEADERS)) {
    assert.equal(response.headers.get(name), value, name);
  }
  const local = streamResponse(events(), 200, HEADERS);
  assert.equal(local.headers.get("x-mixed-case"), "kept");
  assert.equal(local.headers.get("content-type"), HEADERS["content-type"]);
  assert.equal(await local.text(), "data: one\n\n");
});

test("a header the runtime would change or refuse takes the Response constructor", () => {
  const trimmed = streamResponse(events(), 200, { "x-a": "plain", "x-padded": "  both ends \t" });
  assert.equal(trimmed.headers.get("x-padded"), "both ends");
  assert.equal(trimmed.headers.get("x-a"), "plain");
  assert.throws(() => streamResponse(events(), 200, { "x-wide": "\u0100" }), TypeError);
  assert.throws(() => streamResponse(events(), 200, { "x-split": "a\r\nb" }), TypeError);
  assert.throws(() => streamResponse(events(), 200, { "bad name": "a" }), TypeError);
});
