/**
 * Connections past `maxConnections` wait for a place (src/serve/waiting.ts), through the server on real sockets:
 * when more than `maxWaiting` wait, the one that has waited longest is closed (not the newcomer), the others are
 * served in the order they came as places free up, and a shutdown closes those still waiting at once.
 */

import assert from "node:assert/strict";
import { serve } from "../../src/serve/server.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Sends one GET (`connection: close` unless `keep`) and reads until the answer's status line; "closed" on EOF. */
async function ask(conn: Deno.Conn, keep = false): Promise<string> {
  await conn.write(encoder.encode(`GET / HTTP/1.1\r\nhost: x\r\n${keep ? "" : "connection: close\r\n"}\r\n`));
  return await statusOf(conn);
}

async function statusOf(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(4096);
  let text = "";
  for (;;) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) return text === "" ? "closed" : text.slice(9, 12);
    text += decoder.decode(buffer.subarray(0, n));
    if (text.includes("\r\n\r\n")) return text.slice(9, 12);
  }
}

/** Resolves "closed" once the proxy closes `conn` unread, "open" if it has not after `ms`. */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((resolve) => timer = setTimeout(() => resolve("open"), ms));
  try {
    return await Promise.race([statusOf(conn), late]);
  } finally {
    clearTimeout(timer);
  }
}

function start(options: { maxWaiting: number; waitMs: number }) {
  return serve({
    hostname: "127.0.0.1",
    port: 0,
    maxConnections: 1,
    keepaliveTimeoutMs: 30_000,
    headerTimeoutMs: 30_000,
    ...options,
  }, () => new Response("ok"));
}

test("past maxWaiting the longest-waiting connection is closed; the rest are served in turn", {
  timeout: 15_000,
}, async () => {
  await using server = start({ maxWaiting: 2, waitMs: 10_000 });
  assert.ok(server.limited, "the runtime serves per connection");
  const port = server.addr.port;
  const held = await Deno.connect({ hostname: "127.0.0.1", port });
  const waiting: Deno.Conn[] = [];
  try {
    assert.equal(await ask(held, true), "200");
    for (let i = 0; i < 3; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      waiting.push(conn);
      await conn.write(encoder.encode("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"));
    }
    // The third to wait pushes the first out, long before any wait (10 s) ends.
    assert.equal(await closedWithin(waiting[0], 5_000), "closed", "the longest-waiting one is closed");
    held.close();
    assert.equal(await statusOf(waiting[1]), "200", "the next one takes the freed place");
    assert.equal(await statusOf(waiting[2]), "200", "and the newest the place after it");
  } finally {
    for (const conn of [held, ...waiting]) {
      try {
        conn.close();
      } catch { /* closed already */ }
    }
  }
});

test("a shutdown closes the connections still waiting at once", { timeout: 15_000 }, async () => {
  const server = start({ maxWaiting: 4, waitMs: 10_000 });
  const port = server.addr.port;
  const held = await Deno.connect({ hostname: "127.0.0.1", port });
  const queued = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    assert.equal(await ask(held, true), "200");
    await queued.write(encoder.encode("GET / HTTP/1.1\r\nhost: x\r\n\r\n"));
    const closed = closedWithin(queued, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 100)); // accepted by now: it waits, the place is held's
    await server.shutdown();
    assert.equal(await closed, "closed", "closed by the shutdown, not after its wait");
  } finally {
    for (const conn of [held, queued]) {
      try {
        conn.close();
      } catch { /* closed already */ }
    }
    await server.shutdown();
  }
});
