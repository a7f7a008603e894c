import assert from "node:assert/strict";
import { chunkReader, READ_BUFFER_BYTES } from "../../src/proxy/chunks.ts";
import { test } from "../_support/test.ts";

async function readAll(body: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const reader = chunkReader(body);
  const chunks: Uint8Array[] = [];
  for (let chunk = await reader.read(); chunk; chunk = await reader.read()) chunks.push(chunk);
  return chunks;
}

const join = (chunks: Uint8Array[]) => new Uint8Array(chunks.flatMap((chunk) => [...chunk]));

test("a fetch body is read in chunks that each own exactly their bytes (no 64 KiB buffer kept alive)", async () => {
  const payload = new Uint8Array(40_000).map((_, i) => i % 251);
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(payload),
  );
  const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  const chunks = await readAll(response.body!);
  assert.deepEqual(join(chunks), payload);
  for (const chunk of chunks) {
    assert.ok(chunk.byteLength <= READ_BUFFER_BYTES);
    assert.equal(chunk.buffer.byteLength, chunk.byteLength, "the chunk is its own copy");
  }
});

test("a body that is not a byte stream is read chunk by chunk as it is", async () => {
  const parts = ["data: a\n\n", "data: b\n\n"].map((text) => new TextEncoder().encode(text));
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
  assert.deepEqual(await readAll(body), parts);
});
