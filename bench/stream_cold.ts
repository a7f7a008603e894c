/**
 * CPU per 50-chunk stream as `deno task bench` measures it (issue 22.3a): the first 1,000 concurrent streams a
 * server process serves, then a second 1,000 on the same process, so what the first batch spends warming up (V8
 * compiling and tiering up the stream path, the heap growing to hold 1,000 streams, new upstream connections) is
 * told apart from what a warm stream costs. `bench/stream_ab.ts` warms every build before it measures; the bench
 * does not.
 *
 *   deno run -A bench/stream_cold.ts [--main ENTRY]... [--floor] [--bare] [--rounds 4] [--streams 1000]
 *                                    [--sequential 5] [--v8 NAME=FLAGS]...
 *
 * Per round, each target in turn (the order rotating by round) is started anew on the one fake upstream, serves
 * `--sequential` streams one at a time (the bench serves 30, after its JSON load), then `--streams` at once gated as
 * the bench's (each waits after its first chunk until all have theirs), then, after 0.5 s, as many again. CPU per
 * stream is the server's utime + stime over a batch / streams. Prints each target's medians of the rounds: first
 * batch, second batch, and the first over the first target's.
 *
 * `--main` (repeatable; default `dist/bundle/main.js`): a build's entry, run with the proxy's V8 flags, named by its
 * folder. `--floor` adds `bench/stream_floor.ts` and `--bare` `bench/passthrough.ts`. `--v8 NAME=FLAGS` (repeatable)
 * adds every build again with the V8 flags FLAGS (comma-separated, the proxy's own are not kept), named
 * `build+NAME`.
 */

import { basename, dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { percentile } from "./percentiles.ts";
import { cpuMs } from "./cpu_time.ts";
import { V8_FLAGS, writeConfig } from "./proxy_config.ts";
import { type StartOptions, startServer, startUpstream } from "./server_process.ts";
import { concurrentStreams, type StreamRequest, timeStream } from "./streams.ts";

const HERE = new URL(".", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const HEADERS = { "content-type": "application/json", authorization: "Bearer sk-bench-client" };
const BODY = JSON.stringify({ model: "bench", stream: true, messages: [{ role: "user", content: "Hi" }] });
const TIMEOUT_MS = 60_000;

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    main: { type: "string", multiple: true },
    floor: { type: "boolean", default: false },
    bare: { type: "boolean", default: false },
    rounds: { type: "string", default: "4" },
    streams: { type: "string", default: "1000" },
    sequential: { type: "string", default: "5" },
    v8: { type: "string", multiple: true },
  },
});
const rounds = Number(values.rounds);
const streams = Number(values.streams);
const sequential = Number(values.sequential);

interface Target {
  readonly name: string;
  /** How to start it, given the fake upstream's URL and the config file. */
  readonly start: (upstreamUrl: string, config: string) => StartOptions;
  readonly first: number[];
  readonly second: number[];
}

const proxyStart = (entry: string, v8: string) => (_url: string, config: string): StartOptions => ({
  args: ["run", "-A", v8, entry, "--config", config, "--port", "0", "--log-level", "error"],
  cwd: dirname(entry),
});
const targets: Target[] = [];
const add = (name: string, start: Target["start"]) => targets.push({ name, start, first: [], second: [] });
if (values.bare) add("bare", (url) => ({ args: ["run", "-A", `${HERE}passthrough.ts`, url], cwd: ROOT }));
if (values.floor) add("floor", proxyStart(`${HERE}stream_floor.ts`, V8_FLAGS));
const entries = (values.main ?? [`${ROOT}dist/bundle/main.js`]).map((path) => resolve(path));
const flagSets = [
  ["", V8_FLAGS],
  ...(values.v8 ?? []).map((spec) => {
    const at = spec.indexOf("=");
    if (at < 1) throw new Error(`--v8 takes NAME=FLAGS, got '${spec}'`);
    return [`+${spec.slice(0, at)}`, `--v8-flags=${spec.slice(at + 1)}`];
  }),
];
for (const [suffix, v8] of flagSets) {
  for (const entry of entries) add(basename(dirname(entry)) + suffix, proxyStart(entry, v8));
}

/** CPU microseconds per stream of `pid` over one gated batch of `streams` concurrent streams. */
async function batch(pid: number, request: StreamRequest): Promise<number> {
  const before = cpuMs(pid);
  const result = await concurrentStreams(request, streams, TIMEOUT_MS);
  if (result.completed !== streams) {
    throw new Error(`${result.completed} of ${streams} streams completed: ${result.errors.join("; ")}`);
  }
  return ((cpuMs(pid) - before) * 1000) / streams;
}

await using upstream = await startUpstream(["--chunk-delay-ms", "10"]);
const config = await writeConfig({ upstreamUrl: upstream.url, cache: false });
try {
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < targets.length; i++) {
      const target = targets[(i + round) % targets.length];
      await using server = await startServer(target.name, target.start(upstream.url, config));
      const url = `${server.url}/v1/chat/completions`;
      for (let s = 0; s < sequential; s++) {
        await timeStream({ url, body: BODY, headers: HEADERS }, TIMEOUT_MS);
      }
      // Each batch on new client connections, as the bench's concurrent turn.
      for (const list of [target.first, target.second]) {
        using client = Deno.createHttpClient({});
        list.push(await batch(server.pid, { url, body: BODY, headers: HEADERS, client }));
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
    console.error(
      `round ${round + 1}/${rounds}: ` +
        targets.map((t) => `${t.name} ${t.first.at(-1)!.toFixed(0)}/${t.second.at(-1)!.toFixed(0)}`).join(
          ", ",
        ) +
        ` (load ${load})`,
    );
  }
} finally {
  await Deno.remove(config).catch(() => {});
}

const base = percentile(targets[0].first, 50);
const range = (list: number[]) => `${Math.min(...list).toFixed(0)}-${Math.max(...list).toFixed(0)}`;
console.log(
  `${streams} concurrent streams from a new process (after ${sequential} one at a time), then ${streams} more; ` +
    `${rounds} rounds, medians, CPU us per stream`,
);
console.log(`| target | first batch | range | / ${targets[0].name} | second batch | range |`);
console.log("|---|---:|---|---:|---:|---|");
for (const { name, first, second } of targets) {
  const median = percentile(first, 50);
  console.log(
    `| ${name} | ${median.toFixed(0)} | ${range(first)} | ${(median / base).toFixed(2)}x | ${
      percentile(second, 50).toFixed(0)
    } | ${range(second)} |`,
  );
}
