/**
 * The relay of a streamed answer between two instances (two store connections to one real Redis): the leader
 * relays only once asked, at the source's pace whatever its readers do; every key has a TTL; the relay keeps at
 * most `maxBytes`, past which nobody may join and a reader left behind ends with an error event.
 */

import assert from "node:assert/strict";
import { Broadcast } from "../../src/cache/broadcast.ts";
import { relayPointer } from "../../src/cache/relay.ts";
import { openRelay } from "../../src/cache/relay_reader.ts";
import { askForRelay } from "../../src/cache/relay_wants.ts";
import { offerRelay } from "../../src/cache/relay_writer.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { hasRedis, type RedisServer, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const head = {
  headers: { "content-type": "text/event-stream" },
  meta: { endpoint: "a", attempts: 1, cache: null },
};
const event = (i: number) => encoder.encode(`data: {"i":${i},"pad":"${"x".repeat(40)}"}\n\n`);
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A source of `count` events, one every `everyMs`; `pulled` counts what was read from it. */
function source(count: number, everyMs: number) {
  let next = 0;
  const state = { pulled: 0 };
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (next >= count) return controller.close();
      if (next > 0) await delay(everyMs);
      controller.enqueue(event(next++));
      state.pulled = next;
    },
  }, { highWaterMark: 0 });
  return { stream, state };
}

/** Leader A offers `key`'s broadcast; B asks until the relay's pointer appears; returns its id. */
async function relayed(
  redis: RedisServer,
  [a, b]: RedisStore[],
  key: string,
  broadcast: Broadcast,
  maxBytes: number,
) {
  const offer = offerRelay({ store: a, key, maxBytes });
  offer.attach(broadcast, head);
  for (let i = 0; i < 100; i++) {
    const id = await b.get(relayPointer(key));
    if (id !== null) return id;
    askForRelay(b, key);
    await delay(20);
  }
  throw new Error(`no relay for ${key} (${await redis.command("KEYS", "*")})`);
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  return text;
}

test({
  name: "a relay between two instances: paced by its source, bounded, with a TTL on every key",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn(t) {
    await using redis = await startRedis();
    const a = await RedisStore.connect({ url: redis.url, namespace: "relay" });
    const b = await RedisStore.connect({ url: redis.url, namespace: "relay" });
    try {
      await t.step("nothing goes to Redis until another instance asks", async () => {
        const { stream } = source(3, 1);
        const broadcast = new Broadcast(stream, { maxBytes: 10_000 });
        offerRelay({ store: a, key: "unasked", maxBytes: 10_000 }).attach(broadcast, head);
        assert.equal((await readAll(broadcast.join()!)).split("\n\n").length, 4);
        assert.equal(await redis.command("EVAL", "return #redis.call('KEYS', '*relay*')", "0"), "0");
      });

      await t.step("a follower that reads nothing holds nothing up; then it gets every byte", async () => {
        const { stream, state } = source(40, 2);
        const broadcast = new Broadcast(stream, { maxBytes: 100_000 });
        const own = readAll(broadcast.join()!);
        const id = await relayed(redis, [a, b], "paced", broadcast, 100_000);
        const opened = await openRelay(b, "paced", id, "chat", new AbortController().signal);
        assert.ok(opened, "joined from the first byte");
        const whole = await own; // the leader's own reader is done while the follower has read nothing
        assert.equal(state.pulled, 40);
        assert.equal(await readAll(opened.stream), whole);
        for (const key of [`relay:relay:{paced}:${id}`]) {
          const ttl = Number(await redis.command("PTTL", key));
          assert.ok(ttl > 0 && ttl <= 60_000, `${key} has a TTL: ${ttl}`);
        }
        assert.equal(
          await redis.command("EXISTS", "relay:relay:{paced}"),
          "0",
          "the pointer goes at the end",
        );
      });

      await t.step(
        "the leader's own client reading nothing holds up neither the relay nor its source",
        async () => {
          const { stream, state } = source(40, 2);
          const broadcast = new Broadcast(stream, { maxBytes: 100_000 });
          const own = broadcast.join()!; // A's own client: not read until the follower is done
          const id = await relayed(redis, [a, b], "own slow", broadcast, 100_000);
          const opened = await openRelay(b, "own slow", id, "chat", new AbortController().signal);
          assert.ok(opened);
          const followed = await readAll(opened.stream);
          assert.equal(state.pulled, 40);
          assert.equal(followed.split("\n\n").length, 41, "the follower got all 40 events");
          assert.equal(await readAll(own), followed, "A's client then gets the same stream");
        },
      );

      await t.step("the pointer lives as long as the relay runs, past its first TTL", async () => {
        const { stream } = source(40, 100);
        const broadcast = new Broadcast(stream, { maxBytes: 100_000 });
        const own = readAll(broadcast.join()!);
        await relayed(redis, [a, b], "long", broadcast, 100_000);
        await delay(3000);
        // 3 s after it was set: refreshed since (with each heartbeat), it has nearly all of its 60 s left.
        const ttl = Number(await redis.command("PTTL", "relay:relay:{long}"));
        assert.ok(ttl > 57_800, `the pointer has ${ttl} ms left`);
        await own;
      });

      await t.step(
        "past maxBytes: older entries go, a late joiner is refused, a reader left behind gets an error event",
        async () => {
          const { stream } = source(30, 5);
          const broadcast = new Broadcast(stream, { maxBytes: 100_000 });
          const own = broadcast.join()!.getReader();
          const id = await relayed(redis, [a, b], "capped", broadcast, 400);
          const behind = await openRelay(b, "capped", id, "chat", new AbortController().signal);
          assert.ok(behind, "joined while the start was still there");
          const reader = behind.stream.getReader();
          const first = decoder.decode((await reader.read()).value);
          assert.match(first, /"i":0/);
          while (!(await own.read()).done) { /* the leader's client reads it all */ }
          await delay(100);
          assert.equal(await openRelay(b, "capped", id, "chat", new AbortController().signal), null);
          let rest = "";
          for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
            rest += decoder.decode(chunk.value);
          }
          assert.match(rest, /"code":"coalesced_stream_lost"/);
          const length = Number(await redis.command("XLEN", `relay:relay:{capped}:${id}`));
          assert.ok(length < 15, `trimmed to about 400 bytes: ${length} entries`);
        },
      );
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  },
});
