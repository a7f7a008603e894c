/** The upstream connection's read buffer follows what arrives: small for a stream's events, larger for big reads. */

import assert from "node:assert/strict";
import { Connection } from "../../src/upstream/http1_connection.ts";
import { test } from "../_support/test.ts";

test("http1 connection: a stream of small reads shrinks the buffer to 512 bytes, big reads grow it, parking resets it", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  const connection = new Connection(client, "test");
  try {
    const sizes: number[] = [];
    const event = new Uint8Array(100).fill(97);
    // Each read leaves two bytes behind (a chunked body's CRLF, taken with the next chunk).
    for (let i = 0; i < 30; i++) {
      await server.write(event);
      // A read into the room behind the bytes left may take part of the event: read until it is all here.
      while (connection.available < (i === 0 ? 100 : 102)) assert.equal(await connection.fill(), true);
      assert.equal(connection.available, i === 0 ? 100 : 102);
      connection.skip(connection.available - 2);
      sizes.push(connection.bufferBytes);
    }
    connection.skip(2);
    assert.equal(sizes[0], 2048);
    assert.ok(sizes.includes(1024), `halved on the way: ${sizes}`);
    assert.equal(sizes.at(-1), 512);

    // A large burst: every byte arrives, and reads that fill the buffer grow the next one.
    const burst = new Uint8Array(6000).map((_, i) => i % 251);
    await server.write(burst);
    const got: number[] = [];
    let largest = 0;
    while (got.length < burst.length) {
      if (connection.available === 0) assert.equal(await connection.fill(), true);
      largest = Math.max(largest, connection.bufferBytes);
      got.push(...connection.take(connection.available, true));
    }
    assert.deepEqual(got, [...burst]);
    assert.ok(largest > 512, `grew for the burst: ${largest}`);

    // Parked for the next answer: a head-sized buffer again.
    for (let i = 0; i < 30; i++) {
      await server.write(event);
      await connection.fill();
      connection.skip(connection.available);
    }
    assert.equal(connection.bufferBytes, 512);
    connection.idle(performance.now() + 1000);
    assert.equal(connection.bufferBytes, 2048);
  } finally {
    connection.close();
    server.close();
  }
});
