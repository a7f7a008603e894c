/**
 * A parked upstream connection's watch read must not keep a process alive, and must keep it alive again once the
 * connection is used (socket_read.ts: the runtime's read with its op unrefed and refed where the core offers it,
 * `Conn.unref`/`Conn.ref` otherwise). Checked in a subprocess as is, with the op refs missing, and with no
 * internals at all (tests/fixtures/hide_runtime_internals.ts): a script makes a request, leaves the connection
 * parked, makes a second one on it whose answer comes 300 ms later (nothing else keeps the script alive: an unrefed
 * read would end it with the answer unread), then ends with the connection parked again (a refed read would keep it
 * running for the 30 s idle time).
 */

import assert from "node:assert/strict";
import { test } from "../_support/test.ts";

const PRELOAD = new URL("../fixtures/hide_runtime_internals.ts", import.meta.url).pathname;
const AGENT = new URL("../../src/upstream/http1.ts", import.meta.url).href;
const encoder = new TextEncoder();

/** A keep-alive server: answers each GET with `{"n":count}`, the second one 300 ms late; counts connections. */
function server() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen = { connections: 0 };
  const conns = new Set<Deno.Conn>();
  const serveConn = async (conn: Deno.Conn) => {
    const buffer = new Uint8Array(4096);
    let text = "";
    let count = 0;
    try {
      for (;;) {
        const read = await conn.read(buffer);
        if (read === null) return;
        text += new TextDecoder().decode(buffer.subarray(0, read));
        while (text.includes("\r\n\r\n")) {
          text = text.slice(text.indexOf("\r\n\r\n") + 4);
          const n = count++;
          if (n === 1) await new Promise((resolve) => setTimeout(resolve, 300));
          const body = `{"n":${n}}`;
          await conn.write(encoder.encode(
            `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
          ));
        }
      }
    } catch {
      /* the client went away */
    } finally {
      conns.delete(conn);
      conn.close();
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      seen.connections++;
      conns.add(conn);
      serveConn(conn);
    }
  })().catch(() => {});
  return {
    seen,
    url: `http://127.0.0.1:${listener.addr.port}/`,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) conn.close();
      await accepting;
    },
  };
}

for (const mode of ["as is", "no-op-refs", "none"] as const) {
  test(`parked upstream connections, runtime internals ${mode}: no hold on the process, held while used`, {
    timeout: 20_000,
  }, async () => {
    await using upstream = server();
    const script = await Deno.makeTempFile({ suffix: ".ts" });
    await Deno.writeTextFile(
      script,
      `const { Http1Agent } = await import("${AGENT}");
const agent = new Http1Agent();
const get = () => agent.fetch("${upstream.url}", { method: "GET", headers: {}, signal: new AbortController().signal });
console.log(await (await get()).text());
// Not awaited at the top level (a pending top-level await keeps any process alive): only the read does.
get().then((response) => response.text()).then((text) => console.log(text, "opened", agent.connectionsOpened));
`,
    );
    try {
      const preload = mode === "as is" ? [] : ["--preload", PRELOAD];
      const started = performance.now();
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", ...preload, script],
        env: { LLMPROXY_TEST_INTERNALS: mode },
      }).output();
      const ms = performance.now() - started;
      const err = new TextDecoder().decode(stderr);
      assert.equal(new TextDecoder().decode(stdout).trim(), '{"n":0}\n{"n":1} opened 1', err);
      assert.equal(code, 0, err);
      if (mode !== "as is") assert.match(err, /hidden/);
      assert.ok(
        ms < 10_000,
        `the script ended ${ms.toFixed(0)} ms after it started (idle connections last 30 s)`,
      );
      assert.equal(upstream.seen.connections, 1);
    } finally {
      await Deno.remove(script);
    }
  });
}
