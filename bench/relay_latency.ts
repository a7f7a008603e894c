/**
 * What relaying a stream to another instance adds per chunk (streamed coalescing across instances, see
 * src/cache/relay.ts): a leader offers a stream of `--chunks` events, one every `--every` ms, on one Redis
 * connection; a follower on another connection reads it through the relay. Each event carries the time it was
 * made; the follower notes when it got it. Prints p50, p90, p99 and max of that delay, on standalone Redis and on
 * a 3-master cluster.
 *
 *   deno run -A bench/relay_latency.ts [--chunks 200] [--every 20]
 */

import { parseArgs } from "node:util";
import { Broadcast } from "../src/cache/broadcast.ts";
import { relayPointer } from "../src/cache/relay.ts";
import { openRelay } from "../src/cache/relay_reader.ts";
import { askForRelay } from "../src/cache/relay_wants.ts";
import { offerRelay } from "../src/cache/relay_writer.ts";
import { RedisStore, type RedisStoreOptions } from "../src/store/redis.ts";
import { startRedis } from "../tests/_support/redis.ts";
import { startCluster } from "../tests/_support/redis_cluster.ts";
import { percentile } from "./percentiles.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { chunks: { type: "string", default: "200" }, every: { type: "string", default: "20" } },
});
const chunks = Number(values.chunks);
const everyMs = Number(values.every);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const head = { headers: {}, meta: { endpoint: "a", attempts: 1, cache: null } };

function source(): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (next >= chunks) return controller.close();
      if (next > 0) await delay(everyMs);
      next++;
      controller.enqueue(encoder.encode(`data: {"at":${performance.now()}}\n\n`));
    },
  }, { highWaterMark: 0 });
}

async function measure(options: RedisStoreOptions): Promise<number[]> {
  const a = await RedisStore.connect({ ...options, namespace: "relaybench" });
  const b = await RedisStore.connect({ ...options, namespace: "relaybench" });
  try {
    const key = crypto.randomUUID();
    const broadcast = new Broadcast(source(), { maxBytes: 2 * 1024 * 1024 });
    offerRelay({ store: a, key, maxBytes: 2 * 1024 * 1024 }).attach(broadcast, head);
    const own = broadcast.join()!.pipeTo(new WritableStream());
    let id: string | null = null;
    for (let i = 0; i < 200 && id === null; i++) {
      askForRelay(b, key);
      await delay(10);
      id = await b.get(relayPointer(key));
    }
    if (id === null) throw new Error("no relay started");
    const opened = await openRelay(b, key, id, "chat", new AbortController().signal);
    if (!opened) throw new Error("relay could not be joined");
    const delays: number[] = [];
    let text = "";
    for await (const chunk of opened.stream) {
      const now = performance.now();
      text += decoder.decode(chunk, { stream: true });
      for (const match of text.matchAll(/"at":([\d.]+)/g)) delays.push(now - Number(match[1]));
      text = text.slice(text.lastIndexOf("\n\n") + 2);
    }
    await own;
    // The first events were read from the relay's start, late by how long the relay took to be asked for.
    return delays.slice(10);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

const show = (name: string, delays: number[]) => {
  const sorted = [...delays].sort((x, y) => x - y);
  const ms = (q: number) => percentile(sorted, q).toFixed(1);
  const max = sorted[sorted.length - 1].toFixed(1);
  console.log(`${name}: ${sorted.length} chunks, added per chunk p50 ${ms(50)} ms, p90 ${ms(90)} ms`);
  console.log(`  p99 ${ms(99)} ms, max ${max} ms`);
};

{
  await using redis = await startRedis();
  show("standalone", await measure({ url: redis.url }));
}
{
  await using cluster = await startCluster();
  show("3-master cluster", await measure({ clusterNodes: cluster.seeds }));
}
