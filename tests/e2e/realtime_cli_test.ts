/**
 * Realtime sessions through the CLI's own server (src/serve/, Deno's per-connection engine), not `Deno.serve`: the
 * proxy runs as a subprocess with a short keep-alive timeout and a small connection cap, the upstream is the sim's
 * realtime socket, the clients are real WebSockets.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

/** A WebSocket whose messages, open and close can be awaited. */
function connect(url: string) {
  const socket = new WebSocket(url, { headers: { authorization: "Bearer client-key" } });
  socket.binaryType = "arraybuffer";
  const messages: (string | ArrayBuffer)[] = [];
  const waiters: (() => void)[] = [];
  socket.onmessage = (event) => {
    messages.push(event.data);
    waiters.splice(0).forEach((wake) => wake());
  };
  const closed = new Promise<CloseEvent>((resolve) => socket.onclose = resolve);
  const opened = new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = (event) => reject(new Error(`websocket failed: ${(event as ErrorEvent).message}`));
  });
  opened.catch(() => {});
  const message = async (count: number) => {
    const timeout = delay(5000).then(() => {
      throw new Error(
        `message ${count} not received (${messages.length} so far, state ${socket.readyState})`,
      );
    });
    while (messages.length < count) {
      await Promise.race([new Promise<void>((wake) => waiters.push(wake)), timeout, closed]);
      if (messages.length < count && socket.readyState === WebSocket.CLOSED) {
        throw new Error(`closed after ${messages.length} messages, waiting for ${count}`);
      }
    }
    const data = messages[count - 1];
    return typeof data === "string" ? JSON.parse(data) : data;
  };
  return { socket, opened, closed, message, received: () => messages.length };
}

/** Whether a plain request gets an answer (false when the proxy refuses the connection). */
async function answered(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

test(
  "realtime through the CLI server: sessions outlive the keep-alive timeout, count as connections, end cleanly",
  {
    timeout: 40_000,
  },
  async () => {
    await using sim = await SimUpstream.start({ name: "east", quiet: true });
    const path = await Deno.makeTempFile({ suffix: ".yaml" });
    try {
      await Deno.writeTextFile(
        path,
        groupYaml(
          [endpointYaml(sim.url, { name: "east", model: "gpt-realtime" })],
          ["api_keys: [client-key]", "keepalive_timeout: 0.3", "header_timeout: 0.3", "max_connections: 3"],
          "voice",
        ),
      );
      await using proxy = await startProxyProcess(["--config", path, "--port", "0", "--log-level", "info"]);
      const url = proxy.url.replace(/^http/, "ws") + "/v1/realtime?model=voice";
      const clients = [connect(url), connect(url), connect(url)];
      await Promise.all(clients.map((client) => client.opened));
      for (const client of clients) assert.equal((await client.message(1)).type, "session.created");
      // Frames both ways on every session for 4x the keep-alive timeout (and past Deno's ~40 ms teardown), and at
      // least 8 exchanges: on a loaded machine 1.2 s held 7 (each exchange waits for every session's echo).
      let sent = 1;
      const until = performance.now() + 1200;
      while (performance.now() < until || sent < 8) {
        sent++;
        for (const [i, client] of clients.entries()) {
          if (sent % 2) {
            client.socket.send(JSON.stringify({ type: "input_audio_buffer.append", audio: `A${i}-${sent}` }));
            assert.deepEqual((await client.message(sent)).event.audio, `A${i}-${sent}`);
          } else {
            client.socket.send(new Uint8Array([i, sent, 255]));
            assert.deepEqual(new Uint8Array(await client.message(sent)), new Uint8Array([i, sent, 255]));
          }
        }
        await delay(100);
      }
      // Three open sessions fill max_connections 3: a fourth connection is refused.
      assert.equal(await answered(proxy.url + "/health"), false, "an open session counts as a connection");
      // The client closes the first: the upstream's session ends too, and its place is free again.
      clients[0].socket.close(1000, "done");
      assert.equal((await clients[0].closed).code, 1000);
      for (let t = 0; t < 200 && sim.realtime.open > 2; t++) await delay(10);
      assert.equal(sim.realtime.open, 2);
      let freed = false;
      for (let t = 0; t < 20 && !freed; t++) freed = await answered(proxy.url + "/health");
      assert.ok(freed, "the closed session's connection is no longer counted");
      // The upstream closes the second with its code and reason: the client sees them.
      clients[1].socket.send(JSON.stringify({ type: "sim.close", code: 4002, reason: "upstream done" }));
      const closed = await clients[1].closed;
      assert.deepEqual([closed.code, closed.reason], [4002, "upstream done"]);
      // The third is still served, then told the server is going away when the proxy stops.
      clients[2].socket.send(JSON.stringify({ type: "still.there" }));
      assert.equal((await clients[2].message(sent + 1)).event.type, "still.there");
      assert.equal(await proxy.stop("SIGTERM"), 0, proxy.output());
      assert.equal((await clients[2].closed).code, 1001);
      assert.ok(!/Uncaught|panicked|request handler failed/.test(proxy.output()), proxy.output());
    } finally {
      await Deno.remove(path);
    }
  },
);
