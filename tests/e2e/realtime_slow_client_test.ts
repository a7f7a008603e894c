/**
 * A realtime client that sends and stops reading: what the upstream sends it piles up in the proxy, which must
 * not hold more than a bounded amount for it. The sim echoes binary frames, so a client that sends 64 MiB and
 * reads nothing would otherwise leave 64 MiB waiting in the proxy (and any amount more it cares to send). The
 * other way round too: an upstream that stops reading while its client keeps sending.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { FELL_BEHIND, MAX_UNSENT_BYTES } from "../../src/surface/realtime.ts";
import { delay, endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

/** A client WebSocket frame: binary, masked with a zero key (the payload goes as it is). */
function binaryFrame(size: number): Uint8Array {
  const frame = new Uint8Array(14 + size);
  frame[0] = 0x82;
  frame[1] = 0x80 | 127;
  new DataView(frame.buffer).setBigUint64(2, BigInt(size));
  return frame;
}

/** Writes all of `bytes`; false when the peer took nothing for 2 s (it stopped reading) or closed. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean> {
  for (let at = 0; at < bytes.length;) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 2000));
    const wrote = await Promise.race([conn.write(bytes.subarray(at)).catch(() => null), stalled]);
    clearTimeout(timer);
    if (wrote === null) return false;
    at += wrote;
  }
  return true;
}

test("realtime: a client that stops reading is closed once 16 MiB wait for it, and its upstream socket too", {
  timeout: 60_000,
}, async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(path, groupYaml([endpointYaml(sim.url, { name: "a" })]));
  await using proxy = await startProxyProcess(["--config", path, "--port", "0", "--log-level", "warn"]);
  const url = new URL(proxy.url);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  try {
    await writeAll(
      conn,
      new TextEncoder().encode(
        "GET /v1/realtime?model=gpt-test HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      ),
    );
    const head = new Uint8Array(1024);
    const n = await conn.read(head);
    assert.match(new TextDecoder().decode(head.subarray(0, n ?? 0)), /^HTTP\/1\.1 101/);
    while (sim.realtime.open === 0) await delay(10);

    // 4x the bound in 1 MiB frames, reading nothing: the sim echoes each back through the proxy.
    const frame = binaryFrame(1024 * 1024);
    let sent = 0;
    // Stops early when the proxy gives up on the session (it resets the connection or stops reading it).
    while (sent < (4 * MAX_UNSENT_BYTES) / (1024 * 1024) && await writeAll(conn, frame)) sent++;
    // The proxy gives up on the client: the upstream side closes, the session is no longer open.
    const deadline = Date.now() + 10_000;
    while (sim.realtime.open > 0 && Date.now() < deadline) await delay(20);
    assert.equal(sim.realtime.open, 0, `the upstream socket is still open after ${sent} MiB sent`);
    const stats = await (await fetch(`${proxy.url}/stats`)).json();
    assert.equal(stats.realtime.open_sessions, 0);
  } finally {
    conn.close();
    await Deno.remove(path);
  }
});

/** A realtime upstream that completes the handshake, greets, and never reads again. */
function deafUpstream() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      const buffer = new Uint8Array(16 * 1024);
      let head = "";
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buffer);
        if (n === null) break;
        head += new TextDecoder().decode(buffer.subarray(0, n));
      }
      const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1] ?? "";
      const digest = await crypto.subtle.digest(
        "SHA-1",
        new TextEncoder().encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC11D65"),
      );
      const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
      const greeting = new TextEncoder().encode('{"type":"session.created"}');
      await conn.write(
        new TextEncoder().encode(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
        ),
      );
      await conn.write(new Uint8Array([0x81, greeting.length, ...greeting]));
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed already
        }
      }
      await serving.catch(() => {});
    },
  };
}

test("realtime: an upstream that stops reading closes the session once 16 MiB wait for it", {
  timeout: 60_000,
}, async () => {
  await using upstream = deafUpstream();
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(path, groupYaml([endpointYaml(upstream.url, { name: "a" })]));
  await using proxy = await startProxyProcess(["--config", path, "--port", "0", "--log-level", "warn"]);
  try {
    const client = new WebSocket(`${proxy.url.replace("http", "ws")}/v1/realtime?model=gpt-test`);
    const closed = new Promise<CloseEvent>((resolve) => client.onclose = resolve);
    await new Promise((resolve, reject) => {
      client.onmessage = resolve;
      client.onerror = () => reject(new Error("the session did not open"));
    });
    // 4x the bound, sent as fast as the client's own socket takes it.
    const frame = new Uint8Array(1024 * 1024);
    for (let i = 0; i < (4 * MAX_UNSENT_BYTES) / frame.length && client.readyState === WebSocket.OPEN; i++) {
      client.send(frame);
      while (client.bufferedAmount > 4 * frame.length) await delay(5);
    }
    // The proxy gives up on the session: the client sees its close (4008), or its own write failing once the
    // proxy has closed while it was still sending.
    const event = await Promise.race([closed, delay(10_000).then(() => undefined)]);
    assert.ok(event, "the session is still open with 64 MiB sent to an upstream that reads nothing");
    assert.ok(event.code === FELL_BEHIND || !event.wasClean, `closed: ${event.code} ${event.reason}`);
    const stats = await (await fetch(`${proxy.url}/stats`)).json();
    assert.equal(stats.realtime.open_sessions, 0);
  } finally {
    await Deno.remove(path);
  }
});
