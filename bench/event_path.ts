/**
 * The proxy's own cost per streamed event, without sockets or the runtime's server: a connection whose reads are
 * served from memory (one chunk of the chunked body per read, as from a paced upstream, unless `--per-read`) is read by the proxy's own
 * body reader, guard (size cap, masking of the request's key), event framer and pipe (`openStream`), and the
 * client's stream is read by a default reader, as `Deno.serve` drains it. Nothing else runs in the process, so
 * differences of tens of nanoseconds per event show that `bench/inproc.ts` (the whole request, the runtime's
 * socket and server work included: ~17 us per event) cannot resolve. Several builds (checkouts' roots, e.g.
 * snapshots before and after a change) load into one process and run in interleaved rounds.
 *
 *   deno run -A --v8-flags=... bench/event_path.ts [--root DIR]... [--rounds 9] [--streams 2000] [--per-read 1]
 *                                                  [--concurrency 64] [--events 50] [--keys] [--floor]
 *                                                  [--batched N] [--served SECONDS]
 *
 * `--per-read N` puts N events in each read, `--batched N` one more in every Nth read (a busy process finds several
 * events in its socket). `--served S` serves each build's streams with `Deno.serve` in a process of its own and
 * reads them with wrk (`--concurrency` connections, S seconds a round): the server's CPU then includes the runtime's
 * drain of each chunk (a read, a write op and their promises), which a chunk fewer saves.
 * `--keys` stacks what a client key's streamed chat adds (its upstream is asked for usage): the usage watcher
 * (`proxy/usage.ts`), the caller's end tap (`proxy/caller.ts`) and the stripper of what asking for usage added
 * (`usage/stream_usage_option.ts`); the events then carry `"usage":null` and a usage chunk comes last. `--floor`
 * adds `bench/stream_floor.ts`'s body reader over the same reads (a copy of its own per event). Run it with the
 * proxy's V8 flags (`deno task` does: see `V8_FLAGS` in `scripts/compile.ts`) for the proxy's young generation.
 * Prints per build the median over rounds of this process's CPU nanoseconds per event, and the paired ratio to the
 * first build.
 */

import { resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { percentile } from "./percentiles.ts";
import { cpuMs } from "./cpu_time.ts";
import { runWrk } from "./wrk.ts";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    root: { type: "string", multiple: true },
    rounds: { type: "string", default: "9" },
    streams: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "64" },
    events: { type: "string", default: "50" },
    keys: { type: "boolean", default: false },
    floor: { type: "boolean", default: false },
    "per-read": { type: "string", default: "1" },
    batched: { type: "string", default: "0" },
    served: { type: "string" },
    // Internal: serve the build at this root on `--port` (a child of `--served`).
    "serve-root": { type: "string" },
    port: { type: "string" },
  },
});
const roots = (values.root ?? [new URL("..", import.meta.url).pathname]).map((root) => resolve(root));
const rounds = Number(values.rounds);
const streams = Number(values.streams);
const concurrency = Number(values.concurrency);
const contentEvents = Number(values.events);

const encoder = new TextEncoder();
/** A chat chunk as the bench's fake upstream writes it (`src/sim/chat.ts`), ~250 bytes. */
const chatChunk = (content: string) =>
  `data: {"id":"chatcmpl_bench_aa3a_1","object":"chat.completion.chunk","created":1796626476,` +
  `"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_sim","choices":[{"index":0,` +
  `"delta":{"content":"${content}"},"logprobs":null,"finish_reason":null}]${
    values.keys ? ',"usage":null' : ""
  }}\n\n`;
const USAGE_CHUNK = 'data: {"id":"chatcmpl_bench_aa3a_1","object":"chat.completion.chunk","choices":[],' +
  '"usage":{"prompt_tokens":12,"completion_tokens":50,"total_tokens":62}}\n\n';
const events = [
  ...Array.from({ length: contentEvents }, (_, i) => chatChunk(String.fromCharCode(97 + i % 26))),
  ...(values.keys ? [USAGE_CHUNK] : []),
  "data: [DONE]\n\n",
];
const perRead = Number(values["per-read"]);
const batched = Number(values.batched);
/**
 * What each read brings: `--per-read` chunks of the chunked body (the last read with the body's end); with
 * `--batched N`, every Nth read one more.
 */
const chunked = events.map((event, i) =>
  `${encoder.encode(event).length.toString(16)}\r\n${event}\r\n${i === events.length - 1 ? "0\r\n\r\n" : ""}`
);
const reads: Uint8Array[] = [];
for (let at = 0; at < chunked.length;) {
  const count = perRead + (batched > 0 && reads.length % batched === batched - 1 ? 1 : 0);
  reads.push(encoder.encode(chunked.slice(at, at + count).join("")));
  at += count;
}
const EVENTS_PER_STREAM = events.length;

/** A connection whose reads come from `reads`, settled at once. */
class MemoryConn {
  #next = 0;
  /** Bytes of the current read's bytes already read (a read takes at most the buffer it is given, as a socket's). */
  #at = 0;
  read(buffer: Uint8Array): Promise<number | null> {
    const bytes = reads[this.#next];
    if (!bytes) return Promise.resolve(null);
    const length = Math.min(buffer.length, bytes.length - this.#at);
    buffer.set(
      this.#at === 0 && length === bytes.length ? bytes : bytes.subarray(this.#at, this.#at + length),
    );
    this.#at += length;
    if (this.#at === bytes.length) {
      this.#next++;
      this.#at = 0;
    }
    return Promise.resolve(length);
  }
  close(): void {}
  ref(): void {}
  unref(): void {}
}

type Stream = () => ReadableStream<Uint8Array>;

/** Streams whose usage the keyed stack found (each keyed stream's must be). */
let reported = 0;
let opened = 0;

interface Build {
  readonly name: string;
  readonly open: () => Promise<ReadableStream<Uint8Array>>;
}

async function load(root: string, index: number): Promise<Build> {
  const module = (path: string) => import(`file://${root}/src/${path}`);
  const { Connection } = await module("upstream/http1_connection.ts");
  const { BodyReader } = await module("upstream/http1_body.ts");
  const { AnswerGuard } = await module("upstream/answer_guard.ts");
  const { SecretMask } = await module("upstream/secret_mask.ts");
  const { CallSignal } = await module("upstream/call_signal.ts");
  const { openStream } = await module("proxy/stream.ts");
  const { tapStream } = await module("proxy/tap.ts");
  const { StreamUsage } = await module("ratelimit/stream_usage.ts");
  const { withoutUsageChunk } = await module("usage/stream_usage_option.ts");
  const mask = SecretMask.of(["sk-bench-upstream"]);
  const keyed = (stream: ReadableStream<Uint8Array>) => {
    const usage = new StreamUsage();
    const watched = tapStream(stream, (chunk: Uint8Array) => usage.push(chunk), (complete: boolean) => {
      if (complete && usage.tokens === 62) reported++;
    });
    const finished = tapStream(watched, () => {}, () => {});
    return withoutUsageChunk({ body: { kind: "stream", stream: finished } }).body.stream;
  };
  return {
    name: `${index}:${root.split("/").filter(Boolean).at(-1)}`,
    open: async () => {
      opened++;
      const connection = new Connection(new MemoryConn() as unknown as Deno.Conn, "http://127.0.0.1:1");
      const guard = new AnswerGuard(64 * 1024 * 1024, mask);
      const body = new BodyReader(connection, { kind: "chunked" }, () => {}, new CallSignal(), guard);
      const first = await openStream({ body: null, source: body }, "chat", { onEnd() {} });
      if (!first.ok) throw new Error(first.message);
      return values.keys ? keyed(first.body) : first.body;
    },
  };
}

/** `bench/stream_floor.ts`'s body reader over the same reads: a size line, then the data copied out. */
function floorBuild(): Build {
  const stream: Stream = () => {
    const conn = new MemoryConn();
    const buffer = new Uint8Array(4096);
    let start = 0;
    let end = 0;
    let left = 0;
    let controller: ReadableStreamDefaultController<Uint8Array>;
    let release: (() => void) | undefined;
    let waiting = false;
    let done = false;
    const take = (): Uint8Array | null | undefined => {
      for (;;) {
        if (left > 0) {
          if (start === end) return undefined;
          const to = Math.min(end, start + left);
          const data = buffer.slice(start, to);
          left -= to - start;
          start = to;
          if (left === 0) start += 2; // the CRLF after the data: each read brings a whole chunk
          return data;
        }
        let at = start;
        while (at < end - 1 && !(buffer[at] === 13 && buffer[at + 1] === 10)) at++;
        if (at >= end - 1) return undefined;
        let size = 0;
        for (let i = start; i < at; i++) size = size * 16 + parseInt(String.fromCharCode(buffer[i]), 16);
        if (size === 0) return null;
        left = size;
        start = at + 2;
      }
    };
    const flow = (): void => {
      waiting = false;
      if (done) return;
      for (let data = take(); data !== undefined; data = take()) {
        if (data === null) {
          done = true;
          controller.close();
          release?.();
          return;
        }
        controller.enqueue(data);
      }
      if (controller.desiredSize! < 0) {
        release?.();
        release = undefined;
        return;
      }
      waiting = true;
      start = end = 0;
      conn.read(buffer).then((read) => {
        end = read ?? 0;
        flow();
      });
    };
    return new ReadableStream<Uint8Array>({
      start: (opened) => {
        controller = opened;
      },
      pull: () => {
        if (!waiting) flow();
        if (waiting) return new Promise<void>((resolve) => release = resolve);
      },
    }, { highWaterMark: 0 });
  };
  return { name: "floor", open: () => Promise.resolve(stream()) };
}

/** Reads `streams` streams whole, `concurrency` at a time; returns CPU nanoseconds per event. */
async function run(build: Build): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < streams) {
      next++;
      const reader = (await build.open()).getReader();
      while (!(await reader.read()).done);
    }
  };
  const started = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const used = process.cpuUsage(started);
  return (used.user + used.system) * 1000 / (streams * EVENTS_PER_STREAM);
}

const V8 =
  "--v8-flags=--max-semi-space-size=8,--no-allocation-site-pretenuring,--no-concurrent-recompilation";

if (values["serve-root"]) {
  // A child of `--served`: the build's streams as the answers of `Deno.serve`, whose drain reads them.
  const build = await load(resolve(values["serve-root"]), 0);
  Deno.serve(
    { hostname: "127.0.0.1", port: Number(values.port), onListen: () => console.log("ready") },
    async () => new Response(await build.open(), { headers: { "content-type": "text/event-stream" } }),
  );
} else {
  const figures = values.served ? await servedRounds(Number(values.served)) : await inProcessRounds();
  const names = [...roots.map((root, i) => `${i}:${root.split("/").filter(Boolean).at(-1)}`)];
  if (values.floor && !values.served) names.push("floor");
  report(names, figures);
}

/** Each build in one process, read by a default reader: CPU ns per event per round. */
async function inProcessRounds(): Promise<number[][]> {
  const builds: Build[] = [];
  for (const [i, root] of roots.entries()) builds.push(await load(root, i));
  if (values.floor) builds.push(floorBuild());
  for (const build of builds) await run(build); // warm up each (JIT)
  const figures = builds.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < builds.length; i++) {
      const at = (i + round) % builds.length;
      figures[at].push(await run(builds[at]));
    }
  }
  if (values.keys && reported !== opened) {
    throw new Error(`usage found in ${reported} of ${opened} keyed streams`);
  }
  return figures;
}

/**
 * Each build served by `Deno.serve` in a process of its own (the runtime's drain of a stream: a read, a write op and
 * their promises per chunk), wrk's connections reading the streams for `seconds` per round: the server's CPU ns per
 * event per round.
 */
async function servedRounds(seconds: number): Promise<number[][]> {
  const servers = roots.map((root, i) => {
    const port = 47_000 + Math.floor(Math.random() * 2000) * 4 + i;
    const args = [
      "run",
      "-A",
      V8,
      new URL(import.meta.url).pathname,
      "--serve-root",
      root,
      "--port",
      String(port),
    ];
    for (const flag of ["events", "per-read", "batched"] as const) args.push(`--${flag}`, values[flag]);
    if (values.keys) args.push("--keys");
    const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" }).spawn();
    return { child, url: `http://127.0.0.1:${port}/` };
  });
  try {
    for (const { child } of servers) {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const ready = await Promise.race([
        reader.read(),
        new Promise((resolve) => setTimeout(resolve, 20_000)),
      ]);
      if (!ready) throw new Error("a served build did not start");
      reader.releaseLock();
    }
    const figures = servers.map(() => [] as number[]);
    for (let round = -1; round < rounds; round++) { // round -1 warms each up
      for (let i = 0; i < servers.length; i++) {
        const at = (i + Math.max(0, round)) % servers.length;
        const { child, url } = servers[at];
        const before = cpuMs(child.pid);
        const result = await runWrk({
          url,
          connections: concurrency,
          threads: 1,
          durationS: seconds,
          body: "",
          headers: {},
        });
        if (result.non2xx > 0 || result.requests === 0) throw new Error(`${url}: ${result.raw}`);
        if (round >= 0) {
          figures[at].push((cpuMs(child.pid) - before) * 1e6 / (result.requests * EVENTS_PER_STREAM));
        }
      }
    }
    return figures;
  } finally {
    for (const { child } of servers) child.kill();
  }
}

function report(names: string[], figures: number[][]): void {
  console.log(
    `${values.served ? "" : `${streams} streams x `}${rounds} rounds, ${concurrency} at a time, ` +
      `${EVENTS_PER_STREAM} events each, ` +
      `${perRead} a read${batched > 0 ? `, every ${batched}th one more` : ""}` +
      (values.served ? `, served (Deno.serve, wrk for ${values.served} s a round)` : "") +
      (values.keys ? ", a key's stack (usage watcher, caller tap, usage stripper)" : ""),
  );
  console.log("| build | CPU ns/event (median) | min | max | paired: median ratio (quartiles) |");
  console.log("|---|---|---|---|---|");
  for (const [i, name] of names.entries()) {
    const own = figures[i];
    const ratios = own.map((value, round) => value / figures[0][round]);
    console.log(
      `| ${name} | ${percentile(own, 50).toFixed(0)} | ${Math.min(...own).toFixed(0)} | ${
        Math.max(...own).toFixed(0)
      } | ${percentile(ratios, 50).toFixed(3)}x (${percentile(ratios, 25).toFixed(3)}-${
        percentile(ratios, 75).toFixed(3)
      }) |`,
    );
  }
}
