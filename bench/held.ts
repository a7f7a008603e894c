/**
 * What an open stream keeps alive, per stream: each server (a proxy build, the floor, the bare pass-through) runs
 * under the bench's V8 flags with the inspector on; a heap snapshot is taken idle (after a few streams) and again
 * with `--streams` streams held open after their first chunk (the fake upstream's chunks `--chunk-delay-ms` apart,
 * so none ends meanwhile); the difference, divided by the streams, is listed by the heap node's type and name.
 *
 *   deno run -A bench/held.ts --main A/dist/bundle/main.js [--main bench/stream_floor.ts]
 *                             [--main bench/passthrough.ts] [--streams 1000] [--chunk-delay-ms 200] [--top 40]
 *
 * The snapshot collects first, so only what is alive counts; the same build twice reads within ~0.1 KB. With two
 * or more servers it also lists the largest differences of each to the first. `native:system / JSArrayBufferData`
 * is the backing store of array buffers (read buffers): outside the V8 heap, never copied by a scavenge.
 */

import { basename, dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { BENCH_GROUP, V8_FLAGS, writeConfig } from "./proxy_config.ts";
import { type ServerProcess, startServer, startUpstream } from "./server_process.ts";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    main: { type: "string", multiple: true },
    streams: { type: "string", default: "1000" },
    "chunk-delay-ms": { type: "string", default: "200" },
    top: { type: "string", default: "40" },
  },
});
const streams = Number(values.streams);
const top = Number(values.top);
const BODY = JSON.stringify({
  model: BENCH_GROUP,
  stream: true,
  messages: [{ role: "user", content: "Hi" }],
});
const HEADERS = { "content-type": "application/json", authorization: "Bearer sk-bench-client" };
const OFF_HEAP = "native:system / JSArrayBufferData";

/** Live bytes and nodes by `type:name` (strings by type only). */
type Census = Map<string, { count: number; bytes: number }>;

/** One inspector session: a heap snapshot, taken after a full collection, as a census. */
async function snapshot(wsUrl: string): Promise<Census> {
  const socket = new WebSocket(wsUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  const chunks: string[] = [];
  const replies = new Map<number, () => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(message.params.chunk);
    else replies.get(message.id)?.();
  };
  let id = 0;
  const call = (method: string, params = {}) =>
    new Promise<void>((resolve) => {
      replies.set(++id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  await call("HeapProfiler.enable");
  await call("HeapProfiler.collectGarbage");
  await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  socket.close();
  const heap = JSON.parse(chunks.join(""));
  const fields: string[] = heap.snapshot.meta.node_fields;
  const types: string[] = heap.snapshot.meta.node_types[0];
  const [type, name, size] = ["type", "name", "self_size"].map((field) => fields.indexOf(field));
  const census: Census = new Map();
  const nodes: number[] = heap.nodes;
  for (let at = 0; at < nodes.length; at += fields.length) {
    const kind = types[nodes[at + type]];
    const key = kind.includes("string")
      ? `${kind}:`
      : `${kind}:${String(heap.strings[nodes[at + name]]).slice(0, 60)}`;
    const entry = census.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += nodes[at + size];
    census.set(key, entry);
  }
  return census;
}

/** Per held stream: what the second census has over the first. */
function perStream(idle: Census, held: Census): Census {
  const out: Census = new Map();
  for (const key of new Set([...idle.keys(), ...held.keys()])) {
    const before = idle.get(key) ?? { count: 0, bytes: 0 };
    const after = held.get(key) ?? { count: 0, bytes: 0 };
    if (before.count === after.count && before.bytes === after.bytes) continue;
    out.set(key, {
      count: (after.count - before.count) / streams,
      bytes: (after.bytes - before.bytes) / streams,
    });
  }
  return out;
}

function rows(census: Census, limit: number): string[] {
  return [...census].sort((a, b) => Math.abs(b[1].bytes) - Math.abs(a[1].bytes)).slice(0, limit).map(
    ([key, { count, bytes }]) => `${bytes.toFixed(0).padStart(7)} B ${count.toFixed(2).padStart(7)}  ${key}`,
  );
}

async function measure(main: string, upstreamUrl: string, config: string): Promise<Census> {
  const name = basename(main);
  const args = name === "passthrough.ts"
    ? [main, upstreamUrl]
    : [main, "--config", config, "--port", "0", "--log-level", "error"];
  await using server: ServerProcess = await startServer(name, {
    args: ["run", "-A", V8_FLAGS, "--inspect=127.0.0.1:0", ...args],
    cwd: dirname(main),
  });
  const wsUrl = server.output().match(/Debugger listening on (ws:\/\/\S+)/)?.[1];
  if (!wsUrl) throw new Error(`${name}: no inspector address in its output:\n${server.output()}`);
  using client = Deno.createHttpClient({});
  const open = async () => {
    const response = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      body: BODY,
      headers: HEADERS,
      client,
      signal: AbortSignal.timeout(60_000),
    });
    const reader = response.body!.getReader();
    await reader.read();
    return reader;
  };
  for (let i = 0; i < 3; i++) await (await open()).cancel();
  const idle = await snapshot(wsUrl);
  const readers = await Promise.all(Array.from({ length: streams }, open));
  const held = await snapshot(wsUrl);
  await Promise.all(readers.map((reader) => reader.cancel().catch(() => {})));
  return perStream(idle, held);
}

const mains = (values.main ?? []).map((path) => resolve(path));
await using upstream = await startUpstream(["--chunk-delay-ms", values["chunk-delay-ms"]]);
const config = await writeConfig({ upstreamUrl: upstream.url, cache: false });
try {
  const results: [string, Census][] = [];
  for (const main of mains) {
    const census = await measure(main, upstream.url, config);
    results.push([main, census]);
    const total = [...census.values()].reduce((sum, { bytes }) => sum + bytes, 0);
    const offHeap = census.get(OFF_HEAP)?.bytes ?? 0;
    console.log(
      `\n${main}: ${(total / 1024).toFixed(2)} KB per held stream (${streams} held), ` +
        `${((total - offHeap) / 1024).toFixed(2)} KB of it on the V8 heap`,
    );
    for (const row of rows(census, top)) console.log(row);
  }
  const [first, base] = results[0] ?? [];
  for (const [main, census] of results.slice(1)) {
    const difference: Census = new Map();
    for (const key of new Set([...base!.keys(), ...census.keys()])) {
      const a = base!.get(key) ?? { count: 0, bytes: 0 };
      const b = census.get(key) ?? { count: 0, bytes: 0 };
      difference.set(key, { count: b.count - a.count, bytes: b.bytes - a.bytes });
    }
    console.log(`\n${main} minus ${first}, per held stream:`);
    for (const row of rows(difference, top)) console.log(row);
  }
} finally {
  await Deno.remove(config);
}
