/**
 * A whole JSON answer reaches the client byte for byte, whichever form the proxy hands its Response (its decoded
 * text where that is exactly its bytes, else the bytes): UTF-8 beyond ASCII, a byte order mark, bytes that are not
 * UTF-8, and an answer without a content type (which must not become text/plain).
 */

import assert from "node:assert/strict";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const chat = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] });
const answer = (note: Uint8Array): Uint8Array<ArrayBuffer> =>
  new Uint8Array([
    ...encoder.encode('{"id":"c1","object":"chat.completion","choices":[],"note":"'),
    ...note,
    34,
    125,
  ]);

const cases: [string, Uint8Array<ArrayBuffer>, string | null][] = [
  ["ASCII", answer(encoder.encode("plain")), "application/json"],
  ["UTF-8 beyond ASCII", answer(encoder.encode("h\u00e9llo \u4f60\u597d \u{1f600}")), "application/json"],
  [
    "a byte order mark",
    new Uint8Array([0xef, 0xbb, 0xbf, ...answer(encoder.encode("bom"))]),
    "application/json",
  ],
  ["bytes that are not UTF-8", answer(new Uint8Array([0xff, 0xfe])), "application/json; charset=utf-8"],
  ["a U+FFFD the upstream sent", answer(encoder.encode("\ufffd")), "application/json"],
  ["no content type", answer(encoder.encode("untyped")), null],
];

test("whole JSON answers reach the client byte for byte, with the upstream's content type", async () => {
  let current = cases[0];
  await using upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      await request.body?.cancel();
      const [, bytes, type] = current;
      const response = new Response(bytes);
      if (type) response.headers.set("content-type", type);
      else response.headers.delete("content-type");
      return response;
    },
  );
  await using proxy = await startProxy(groupYaml([endpointYaml(`http://127.0.0.1:${upstream.addr.port}`)]));
  for (const one of cases) {
    current = one;
    const [name, bytes, type] = one;
    const response = await fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body: chat });
    assert.equal(response.status, 200, name);
    assert.equal(response.headers.get("content-type"), type, name);
    assert.equal(response.headers.get("content-length"), String(bytes.length), name);
    assert.deepEqual(new Uint8Array(await response.arrayBuffer()), bytes, name);
  }
});
