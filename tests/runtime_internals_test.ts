/**
 * The runtime internals the proxy takes fast paths through are still there, in the shape it reads them. Each module
 * falls back quietly when one is missing (tests/e2e/runtime_fallback_test.ts and
 * tests/upstream/socket_read_fallback_test.ts run those fallbacks): after a Deno upgrade this test is what says
 * that a fast path was lost, and which file to re-check.
 */

import assert from "node:assert/strict";
import { test } from "./_support/test.ts";

type Core = Record<string, unknown>;
const deno = Deno as unknown as Record<symbol, Record<string, unknown> | undefined> & { internal?: symbol };
const internal = deno.internal ? deno[deno.internal] : undefined;
const core = internal?.core as Core | undefined;

const symbolNamed = (object: object, description: string) =>
  Object.getOwnPropertySymbols(object).find((symbol) => symbol.description === description);

test("Deno[Deno.internal]: the core's reads, op refs, timers, resources and the connection server", () => {
  assert.ok(core, "Deno[Deno.internal].core");
  const uses: Record<string, string> = {
    read: "upstream/socket_read.ts",
    refOpPromise: "upstream/socket_read.ts",
    unrefOpPromise: "upstream/socket_read.ts",
    createTimer: "util/timer.ts",
    cancelTimer: "util/timer.ts",
    refTimer: "util/timer.ts",
    unrefTimer: "util/timer.ts",
    resources: "serve/upgrade.ts",
    tryClose: "serve/upgrade.ts",
  };
  for (const [name, file] of Object.entries(uses)) {
    assert.equal(typeof core[name], "function", `core.${name} (src/${file})`);
  }
  assert.equal(
    typeof core.internalRidSymbol,
    "symbol",
    "core.internalRidSymbol (src/upstream/socket_read.ts)",
  );
  assert.equal(
    typeof internal?.serveHttpOnConnection,
    "function",
    "serveHttpOnConnection (src/serve/engine.ts)",
  );
});

test(
  "serveHttpOnConnection only adds an abort listener to its signal, and calling it closes the connection",
  {
    timeout: 10_000,
  },
  async () => {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted = listener.accept();
    using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const conn = await accepted;
    // The server's connection record stands in for an AbortSignal (src/serve/open_connection.ts).
    const added: string[] = [];
    let abort: (() => void) | undefined;
    const hook = new Proxy({
      addEventListener(type: string, listener: () => void) {
        added.push(type);
        abort = listener;
      },
    }, {
      get(target, key, receiver) {
        if (key !== "addEventListener") added.push(`read ${String(key)}`);
        return Reflect.get(target, key, receiver);
      },
    });
    const serveOn = internal!.serveHttpOnConnection as (
      ...args: unknown[]
    ) => { finished: Promise<void> };
    const served = serveOn(conn, hook, () => new Response("ok"), () => new Response("failed"), () => {});
    assert.deepEqual(added, ["abort"], "src/serve/open_connection.ts");
    abort!();
    assert.equal(await client.read(new Uint8Array(16)), null, "the forced close ends the connection");
    await served.finished;
  },
);

test("the op refs take the promise core.read returns, and a connection's rid is under core.internalRidSymbol", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  using server = await accepted;
  const rid = (client as unknown as Record<symbol, unknown>)[core!.internalRidSymbol as symbol];
  assert.equal(typeof rid, "number");
  assert.equal(symbolNamed(client, "Deno.internal.rid"), core!.internalRidSymbol, "src/serve/upgrade.ts");
  const read = (core!.read as (rid: number, buffer: Uint8Array) => Promise<number>)(
    rid as number,
    new Uint8Array(8),
  );
  (core!.unrefOpPromise as (promise: Promise<unknown>) => void)(read);
  (core!.refOpPromise as (promise: Promise<unknown>) => void)(read);
  await server.write(new Uint8Array([1, 2, 3]));
  assert.equal(await read, 3);
});

test("a Response keeps its inner response under 'response', from whose headerList its headers are made", async () => {
  const response = new Response(ReadableStream.from([new Uint8Array([104, 105])]), { status: 202 });
  const slot = symbolNamed(response, "response");
  assert.ok(slot, "src/http/stream_response.ts");
  const list = (response as unknown as Record<symbol, { headerList?: unknown }>)[slot].headerList;
  assert.ok(Array.isArray(list), "src/http/stream_response.ts: headerList");
  list.push(["x-pushed", "yes"]);
  assert.equal(response.headers.get("x-pushed"), "yes");
  await response.body?.cancel();
});

test("a served Request keeps its inner request under 'request', with onCancel", async () => {
  let found: unknown;
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const slot = symbolNamed(request, "request");
    found = slot && typeof (request as unknown as Record<symbol, { onCancel?: unknown }>)[slot]?.onCancel;
    return new Response("ok");
  });
  assert.equal(await (await fetch(`http://127.0.0.1:${server.addr.port}/`)).text(), "ok");
  assert.equal(found, "function", "src/http/served_request.ts");
});

test("a WebSocket handshake answered 401 says the status in its error event's message", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("no", { status: 401 }),
  );
  const socket = new WebSocket(`ws://127.0.0.1:${server.addr.port}/`);
  const closed = new Promise((resolve) => socket.onclose = resolve);
  const message = await new Promise((resolve) =>
    socket.onerror = (event) => resolve((event as ErrorEvent).message)
  );
  await closed;
  assert.match(String(message), /Invalid status code: 401\b/, "src/surface/realtime.ts: handshakeStatus");
});
