import assert from "node:assert/strict";
import { headerPairs } from "../../src/http/header_pairs.ts";
import { test } from "../_support/test.ts";
import { rawRequest } from "../_support/raw_request.ts";

/** Whether Deno built and kept a list or a sorted copy on the Headers object (symbols named as in Deno 2.9). */
function keptLists(headers: Headers): string[] {
  const record = headers as unknown as Record<symbol, unknown>;
  return Object.getOwnPropertySymbols(headers)
    .filter((symbol) =>
      symbol.description === "header list" || symbol.description === "iterable headers cache"
    )
    .filter((symbol) => record[symbol] != null)
    .map((symbol) => symbol.description!);
}

test("a served request's headers are read as sent, and nothing is left cached on the request", async () => {
  const seen: {
    pairs: readonly (readonly [string, string])[];
    kept: string[];
    keptAfterForEach: string[];
  }[] = [];
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const pairs = headerPairs(request.headers);
    const kept = keptLists(request.headers);
    request.headers.forEach(() => {});
    seen.push({ pairs, kept, keptAfterForEach: keptLists(request.headers) });
    return new Response("ok");
  });
  await rawRequest(
    server.addr.port,
    "GET / HTTP/1.1\r\nHost: x\r\nX-Stainless-Lang: js\r\nAccept: a\r\nAccept: b\r\nConnection: close\r\n\r\n",
  );
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0].pairs.map(([name, value]) => `${name.toLowerCase()}=${value}`), [
    "host=x",
    "x-stainless-lang=js",
    "accept=a",
    "accept=b",
    "connection=close",
  ]);
  assert.deepEqual(seen[0].kept, []);
  // The check above can fail: forEach does leave both.
  assert.deepEqual(seen[0].keptAfterForEach.sort(), ["header list", "iterable headers cache"]);
});

test("a Headers made by hand is read through forEach", () => {
  assert.deepEqual(headerPairs(new Headers({ "X-A": "1", b: "2" })), [["b", "2"], ["x-a", "1"]]);
});
