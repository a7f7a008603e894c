import assert from "node:assert/strict";
import { clientSignal, servedHeaders } from "../../src/http/served_request.ts";
import { CallSignal } from "../../src/upstream/call_signal.ts";
import { rawRequest } from "../_support/raw_request.ts";
import { test } from "../_support/test.ts";

test("a served request's headers are read from one list: by name in any case, repeats joined, no Headers made", async () => {
  const seen: { values: (string | null)[]; names: string[]; headersMade: unknown }[] = [];
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const headers = servedHeaders(request);
    const values = ["accept", "x-stainless-lang", "content-type", "Accept"].map((name) => headers.get(name));
    const cache = Object.getOwnPropertySymbols(request).find((symbol) =>
      symbol.description === "headers cache"
    );
    seen.push({
      values,
      names: headers.pairs.map(([name, value]) => `${name.toLowerCase()}=${value}`),
      headersMade: cache === undefined
        ? "no cache slot"
        : (request as unknown as Record<symbol, unknown>)[cache],
    });
    return new Response("ok");
  });
  await rawRequest(
    server.addr.port,
    "GET / HTTP/1.1\r\nHost: x\r\nX-Stainless-Lang: js\r\nAccept: a\r\naccept: b\r\nConnection: close\r\n\r\n",
  );
  assert.equal(seen.length, 1);
  // As Headers.get answers (a name asked in any case): repeats joined with ", ", null when absent.
  assert.deepEqual(seen[0].values, ["a, b", "js", null, "a, b"]);
  assert.deepEqual(seen[0].names, [
    "host=x",
    "x-stainless-lang=js",
    "accept=a",
    "accept=b",
    "connection=close",
  ]);
  // request.headers was never made (Deno would build the list once more when the handler returns).
  assert.equal(seen[0].headersMade, undefined);
});

test("a request made in process is read too, and its signal is its request.signal", () => {
  const controller = new AbortController();
  const request = new Request("http://x/", { headers: { "X-A": "1", b: "2" }, signal: controller.signal });
  const headers = servedHeaders(request);
  assert.equal(headers.get("x-a"), "1");
  assert.equal(headers.get("c"), null);
  const signal = clientSignal(request);
  controller.abort();
  assert.equal(signal.aborted, true);
});

test("the client's leaving aborts a served request's signal (not an AbortSignal) with an AbortError", async () => {
  const aborted = Promise.withResolvers<unknown>();
  let plain = false;
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const signal = clientSignal(request);
    plain = signal instanceof CallSignal;
    signal.addEventListener("abort", () => aborted.resolve(signal.reason));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([aborted.promise, new Promise((resolve) => timer = setTimeout(resolve, 5_000))]);
    clearTimeout(timer);
    return new Response("late");
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  await new Promise((resolve) => setTimeout(resolve, 100));
  conn.close();
  const reason = await aborted.promise;
  assert.equal(plain, true);
  assert.ok(reason instanceof DOMException && reason.name === "AbortError", String(reason));
});
