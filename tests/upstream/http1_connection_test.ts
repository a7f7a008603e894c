/** The upstream connection's read buffer follows what arrives: larger for big reads, down to 512 bytes for small ones. */

import assert from "node:assert/strict";
import { Connection } from "../../src/upstream/http1_connection.ts";
import { test } from "../_support/test.ts";

test("http1 connection: big reads grow the buffer, a stream's small reads shrink it to 512 bytes, parking brings back 2 KiB", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  const connection = new Connection(client, "test");
  try {
    assert.equal(connection.bufferBytes, 2048);
    // A large answer: every byte arrives, and reads that fill the buffer grow the next one.
    const burst = new Uint8Array(40_000).map((_, i) => i % 251);
    const writing = server.write(burst).then(async (written) => {
      for (let at = written; at < burst.length;) at += await server.write(burst.subarray(at));
    });
    const got: number[] = [];
    let largest = 0;
    while (got.length < burst.length) {
      if (connection.available === 0) assert.equal(await connection.fill(), true);
      largest = Math.max(largest, connection.bufferBytes);
      got.push(...connection.take(connection.available, true));
    }
    await writing;
    assert.deepEqual(got, [...burst]);
    assert.ok(largest >= 8192, `grew for the large answer: ${largest}`);

    // Then a stream's events, each read leaving two bytes behind (a chunked body's CRLF, taken with the next chunk):
    // the buffer shrinks in place with those bytes kept, down to 512 bytes.
    const sizes: number[] = [];
    let behind = new Uint8Array(0);
    for (let i = 0; i < 30; i++) {
      const event = new Uint8Array(100).map((_, at) => (i * 7 + at) % 256);
      await server.write(event);
      // A read into the room behind the bytes left may take part of the event: read until it is all here.
      while (connection.available < behind.length + 100) assert.equal(await connection.fill(), true);
      const here = connection.take(connection.available - 2, true);
      assert.deepEqual(
        [...here],
        [...behind, ...event.subarray(0, 98)],
        `bytes kept across a resize (read ${i})`,
      );
      behind = event.subarray(98);
      sizes.push(connection.bufferBytes);
    }
    assert.equal(sizes.at(-1), 512, `shrunk back: ${sizes}`);
    assert.equal(new Set(sizes).size, 2, `in one resize, not one per halving: ${sizes}`);
    assert.ok(sizes.every((size) => size >= 512), `never below 512 bytes: ${sizes}`);
    // Parked, it gets 2 KiB back: the next answer's head is read into it.
    connection.idle(performance.now() + 1000);
    assert.equal(connection.bufferBytes, 2048);
  } finally {
    connection.close();
    server.close();
  }
});

test("http1 connection: a stream's buffer keeps room for four of its reads (two or three events come whole)", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  const connection = new Connection(client, "test");
  try {
    for (const [size, kept] of [[260, 1024], [120, 512]]) {
      for (let i = 0; i < 12; i++) {
        await server.write(new Uint8Array(size).fill(i));
        while (connection.available < size) assert.equal(await connection.fill(), true);
        connection.take(size, true);
      }
      assert.equal(connection.bufferBytes, kept, `${size}-byte reads`);
      // Three events waiting in the socket are read whole.
      await server.write(new Uint8Array(size * 3).fill(7));
      while (connection.available < size * 3) assert.equal(await connection.fill(), true);
      assert.equal(connection.take(size * 3, true).length, size * 3);
    }
  } finally {
    connection.close();
    server.close();
  }
});
