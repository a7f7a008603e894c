import assert from "node:assert/strict";
import { Broadcast, type BroadcastEnd } from "../../src/cache/broadcast.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A source that hands out `chunks` on demand and counts how many were pulled. */
function source(chunks: string[]) {
  let pulled = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled < chunks.length) controller.enqueue(encoder.encode(chunks[pulled++]));
      if (pulled === chunks.length) controller.close();
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, pulled: () => pulled, cancelled: () => cancelled };
}

const readAll = async (stream: ReadableStream<Uint8Array>) =>
  decoder.decode(await new Response(stream).arrayBuffer());

test("every reader gets everything from the first byte; a late one gets the past at once", async () => {
  const src = source(["a", "b", "c"]);
  const ends: BroadcastEnd[] = [];
  const broadcast = new Broadcast(src.stream, { maxBytes: 100, onEnd: (end) => ends.push(end) });
  const first = broadcast.join()!.getReader();
  assert.equal(decoder.decode((await first.read()).value), "a");
  assert.equal(decoder.decode((await first.read()).value), "b");
  // A reader that keeps up flows (proxy/tap.ts): it reads one chunk ahead of what it was asked for, no more.
  assert.equal(src.pulled(), 3, "the source runs at the pace of the fastest reader");
  const late = broadcast.join()!;
  assert.equal(await readAll(late), "abc");
  assert.equal(decoder.decode((await first.read()).value), "c");
  assert.equal((await first.read()).done, true);
  assert.deepEqual(ends, ["done"]);
  assert.equal(await readAll(broadcast.join()!), "abc", "joinable after the end while within the bound");
});

test("a slow reader does not hold back a fast one", async () => {
  const src = source(["1", "2", "3", "4"]);
  const broadcast = new Broadcast(src.stream, { maxBytes: 100 });
  const slow = broadcast.join()!.getReader();
  const fast = broadcast.join()!;
  assert.equal(await readAll(fast), "1234");
  assert.equal(decoder.decode((await slow.read()).value), "1");
  await slow.cancel();
});

test("a reader far behind holds the fast one back at maxBytes, not at twice that", async () => {
  const src = source(Array.from({ length: 1000 }, () => "x".repeat(100)));
  const broadcast = new Broadcast(src.stream, { maxBytes: 2000 });
  const slow = broadcast.join()!.getReader();
  const fast = broadcast.join()!.getReader();
  /** Reads `fast` until it waits (for the slow reader); false if it never did. */
  const runFast = async () => {
    for (let i = 0; i < 1000; i++) {
      const next = await Promise.race([
        fast.read(),
        new Promise<"stalled">((resolve) => setTimeout(() => resolve("stalled"), 50)),
      ]);
      if (next === "stalled") return true;
    }
    return false;
  };
  await slow.read();
  assert.ok(await runFast(), "the fast reader waits for the slow one");
  // The slow reader takes a few more chunks: its pass-through must not take the whole backlog off the broadcast with
  // it (which would let the fast reader run a second maxBytes ahead).
  for (let i = 0; i < 3; i++) await slow.read();
  assert.ok(await runFast());
  // What the source gave beyond the slow reader's four chunks: the bound, plus a chunk or two in flight (each
  // reader's pass-through may hold one chunk its client has not asked for yet, and one read is pending).
  const ahead = src.pulled() * 100 - 400;
  assert.ok(ahead <= 2000 + 300, `the source ran ${ahead} bytes ahead of the slow reader (bound 2000)`);
  await fast.cancel();
  await slow.cancel();
  assert.equal(src.cancelled(), true);
});

test("past maxBytes nobody may join, and the source is cancelled when the last reader leaves", async () => {
  const src = source(["xxxx", "yyyy", "zzzz"]);
  const ends: BroadcastEnd[] = [];
  const broadcast = new Broadcast(src.stream, { maxBytes: 6, onEnd: (end) => ends.push(end) });
  const a = broadcast.join()!.getReader();
  const b = broadcast.join()!.getReader();
  await a.read();
  await a.read();
  assert.equal(broadcast.join(), null, "8 bytes went by: too late to start from the first byte");
  await a.cancel();
  assert.equal(src.cancelled(), false, "b still reads");
  await b.read();
  await b.cancel();
  assert.equal(src.cancelled(), true);
  assert.deepEqual(ends, ["abandoned"]);
});

test("what is kept for late joiners is a copy, not a view of the source's (shared) buffer", async () => {
  const slab = encoder.encode("xxabcyy");
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(slab.subarray(2, 5));
      controller.close();
    },
  });
  const broadcast = new Broadcast(stream, { maxBytes: 100 });
  assert.equal(await readAll(broadcast.join()!), "abc");
  const kept = (await broadcast.join()!.getReader().read()).value!;
  assert.equal(decoder.decode(kept), "abc");
  assert.notEqual(kept.buffer, slab.buffer);
  slab.fill(0);
  assert.equal(decoder.decode(kept), "abc", "the source's buffer reused: the kept copy is unchanged");
});

test("a long stream is kept in a few blocks of its own, at most about twice its size", async () => {
  const chunks = Array.from(
    { length: 400 },
    (_, i) => `data: {"n":${i},"text":"${"x".repeat(i % 300)}"}\n\n`,
  );
  const src = source(chunks);
  const broadcast = new Broadcast(src.stream, { maxBytes: 1 << 20 });
  const whole = chunks.join("");
  assert.equal(await readAll(broadcast.join()!), whole);
  const buffers = new Set<ArrayBufferLike>();
  const late = broadcast.join()!.getReader();
  let bytes = 0;
  for (let read = await late.read(); !read.done; read = await late.read()) {
    buffers.add(read.value.buffer);
    bytes += read.value.byteLength;
  }
  assert.equal(bytes, encoder.encode(whole).length);
  const held = [...buffers].reduce((sum, buffer) => sum + buffer.byteLength, 0);
  assert.ok(buffers.size < 20, `${buffers.size} buffers for 400 chunks`);
  assert.ok(held <= 2 * bytes + 64 * 1024, `${held} bytes held for ${bytes}`);
});

test("a reader behind when the source fails gets every chunk before the failure, then the failure", async () => {
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === 5) return controller.error(new Error("upstream cut"));
      controller.enqueue(encoder.encode(`chunk${sent++};`));
    },
  }, { highWaterMark: 0 });
  const broadcast = new Broadcast(stream, { maxBytes: 1000 });
  const drain = async (reader: ReadableStream<Uint8Array>, pauseMs: number) => {
    const chunks = reader.getReader();
    let text = "";
    try {
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
        const { done, value } = await chunks.read();
        if (done) return `${text}<end>`;
        text += decoder.decode(value);
      }
    } catch (error) {
      return `${text}<${(error as Error).message}>`;
    }
  };
  const all = "chunk0;chunk1;chunk2;chunk3;chunk4;<upstream cut>";
  // The fast reader takes each chunk as it comes; the slow one finds them all at hand, and the failure after them.
  assert.deepEqual(await Promise.all([drain(broadcast.join()!, 0), drain(broadcast.join()!, 20)]), [
    all,
    all,
  ]);
  assert.equal(await broadcast.ended, "failed");
});
