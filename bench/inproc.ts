/**
 * The proxy's own cost per request, without client sockets: requests go straight into the app's `fetch` handler,
 * and the upstream is a server in this process on loopback that answers at once. No other process shares the CPU, so differences of a
 * few microseconds between builds show, where the socket bench (bench.ts, ab.ts) swings by tens of percent on a
 * shared machine. Several builds (each a checkout's root, e.g. snapshots before and after a change) load into one
 * process and run in interleaved rounds.
 *
 *   deno run -A bench/inproc.ts [--root DIR]... [--rounds 7] [--requests 20000] [--concurrency 64] [--cache]
 *                               [--unique] [--stream] [--keys 100 [--key-limits]] [--cache-both]
 *
 * Without `--root` it measures this checkout. `--cache` turns the cache on; `--unique` makes every body unique
 * (with `--cache`: all misses); `--stream` asks for 50-chunk streams (all chunks at once) and reads them whole.
 * `--paced MS` takes the answers from the bench's fake upstream in a process of its own instead, streams' chunks MS
 * ms apart (each event its own read, as from a real upstream; with `--stream`): this process's CPU is then the
 * proxy's alone, per event as in production (builds before c883a9a fail it, as in bench/alloc.ts). Use fewer
 * `--requests` (a stream then lasts ~50 x MS ms). `--chunks N` sets its content chunks per stream (default 50; a
 * stream is N + 3 events): two runs apart, what a stream costs once and what each event costs.
 * `--floor` (with `--stream`) adds the stream floor (bench/stream_floor.ts: the least a gateway that sees every
 * event does) as a build of its own, so the proxy's own share per stream reads as a paired ratio to it.
 * `--keys N` also loads each build with N named client keys (`+keys`), every request authenticated by one of them;
 * `--key-limits` gives the keys limits that are checked on every request and never reached.
 * `--cache-both` loads each build twice, cache off and cache on (`+cache`), so what the cache adds to a request
 * (with `--unique`: to a miss) is read as a paired ratio within one process.
 * Prints, per build, the median over rounds of this process's CPU microseconds per request (user plus system time
 * of the whole batch / requests; the loopback upstream's share is the same for every build): CPU time, unlike wall
 * time, does not grow while other processes hold the machine's cores.
 */

import { resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { percentile } from "./percentiles.ts";
import { BENCH_GROUP, CHAT_ANSWER, configYaml } from "./proxy_config.ts";
import { startUpstream } from "./server_process.ts";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    root: { type: "string", multiple: true },
    rounds: { type: "string", default: "7" },
    requests: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "64" },
    cache: { type: "boolean", default: false },
    unique: { type: "boolean", default: false },
    stream: { type: "boolean", default: false },
    paced: { type: "string" },
    chunks: { type: "string", default: "50" },
    floor: { type: "boolean", default: false },
    keys: { type: "string", default: "0" },
    "key-limits": { type: "boolean", default: false },
    "cache-both": { type: "boolean", default: false },
  },
});
const roots = (values.root ?? [new URL("..", import.meta.url).pathname]).map((root) => resolve(root));
const rounds = Number(values.rounds);
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);

const encoder = new TextEncoder();
const ANSWER = encoder.encode(CHAT_ANSWER);
const ANSWER_HEADERS = {
  "content-type": "application/json",
  "openai-processing-ms": "3",
  "x-request-id": "req_upstream",
  "x-ratelimit-limit-requests": "10000",
  "x-ratelimit-remaining-requests": "9999",
  "x-ratelimit-reset-requests": "6ms",
  "x-ratelimit-limit-tokens": "2000000",
  "x-ratelimit-remaining-tokens": "1999900",
  "x-ratelimit-reset-tokens": "1ms",
};
const STREAM = encoder.encode(
  Array.from({ length: 50 }, (_, i) =>
    `data: ${
      JSON.stringify({
        id: "chatcmpl-bench",
        object: "chat.completion.chunk",
        choices: [{ index: 0, delta: { content: `tok${i} ` }, finish_reason: null }],
      })
    }\n\n`).join("") + "data: [DONE]\n\n",
);

/** The in-process upstream: every call answers at once (a stream is one chunk per event, all ready). */
function upstreamFetch(_input: Request | URL | string, init?: RequestInit): Promise<Response> {
  const stream = typeof init?.body === "string" && init.body.includes('"stream":true');
  if (!stream) return Promise.resolve(new Response(ANSWER, { headers: ANSWER_HEADERS }));
  const events = STREAM;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let at = 0;
      while (at < events.length) {
        const end = events.indexOf(10, events.indexOf(10, at) + 1) + 1;
        controller.enqueue(events.subarray(at, end));
        at = end;
      }
      controller.close();
    },
  });
  return Promise.resolve(new Response(body, { headers: { "content-type": "text/event-stream" } }));
}

/** The upstream on loopback (the proxy's fetch can no longer be swapped): the same for every build. */
const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
  const body = await request.text();
  return await upstreamFetch(request.url, { body });
});
const paced = values.paced === undefined
  ? undefined
  : await startUpstream(["--chunk-delay-ms", values.paced, "--chunks", values.chunks]);
const upstreamUrl = paced?.url ?? `http://127.0.0.1:${upstream.addr.port}`;

interface Build {
  readonly name: string;
  /** What the build is loaded with (`+keys`, `+cache`, nothing): its paired ratio is also read to the first of its kind. */
  readonly kind: string;
  /** The checkout (its index among the roots); the floor's is -1. */
  readonly root: number;
  readonly handle: (request: Request) => Response | Promise<Response>;
}

async function load(root: string, index: number, keys = 0, cache = values.cache): Promise<Build> {
  // parse.ts since session 10; load.ts in older snapshots.
  const parseConfig = (await import(`file://${root}/src/config/load.ts`)).parseConfig ??
    (await import(`file://${root}/src/config/parse.ts`)).parseConfig;
  const { buildServices } = await import(`file://${root}/src/services.ts`);
  const { createApp } = await import(`file://${root}/src/app.ts`);
  const { createLogger } = await import(`file://${root}/src/logger.ts`);
  const yaml = configYaml({
    upstreamUrl,
    cache,
    keys,
    keyLimits: values["key-limits"],
  });
  const config = parseConfig(yaml, "inproc.yaml", () => undefined);
  const logger = createLogger({ level: "error", write: () => {} });
  const services = await buildServices(config, { logger });
  const app = createApp(services);
  const kind = `${keys > 0 ? "+keys" : ""}${values["cache-both"] && cache ? "+cache" : ""}`;
  const name = `${index}:${root.split("/").filter(Boolean).at(-1)}${kind}`;
  return { name, kind, root: index, handle: (request) => app.fetch(request) };
}

/** The stream floor's handler, forwarding to the same upstream as the builds. */
async function floorBuild(): Promise<Build> {
  if (!values.stream) throw new Error("--floor needs --stream: the floor streams every answer");
  const { parseConfig } = await import("../src/config/parse.ts");
  const { gatewayTarget } = await import("./gateway_args.ts");
  const { floorHandler, useTarget } = await import("./stream_floor.ts");
  useTarget(
    gatewayTarget(parseConfig(configYaml({ upstreamUrl, cache: false }), "floor.yaml", () => undefined)),
  );
  return { name: "floor", kind: "floor", root: -1, handle: floorHandler };
}

let sequence = 0;
function request(): Request {
  const content = values.unique
    ? `Say hello to the benchmark. #${sequence++}`
    : "Say hello to the benchmark.";
  const body = JSON.stringify({
    model: BENCH_GROUP,
    messages: [{ role: "user", content }],
    ...(values.stream ? { stream: true } : {}),
  });
  // With a content-length, as clients send bodies: the proxy reads such a body whole (a body of unknown length
  // takes the counted, streamed read).
  return new Request("http://127.0.0.1/v1/chat/completions", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "content-length": String(body.length),
      authorization: "Bearer sk-bench-client",
    },
    body,
  });
}

/** Runs `requests` requests, `concurrency` at a time; returns microseconds per request. */
async function run(build: Build): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < requests) {
      next++;
      const response = await build.handle(request());
      if (response.status !== 200) throw new Error(`${build.name}: HTTP ${response.status}`);
      await response.arrayBuffer();
    }
  };
  const started = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const used = process.cpuUsage(started);
  return (used.user + used.system) / requests;
}

const builds: Build[] = [];
for (const [i, root] of roots.entries()) {
  builds.push(await load(root, i, 0, values.cache && !values["cache-both"]));
  if (values["cache-both"]) builds.push(await load(root, i, 0, true));
  if (Number(values.keys) > 0) builds.push(await load(root, i, Number(values.keys)));
}
if (values.floor) builds.push(await floorBuild());
for (const build of builds) await run(build); // warm up each (JIT)
const figures = new Map(builds.map((build) => [build.name, [] as number[]]));
for (let round = 0; round < rounds; round++) {
  // Rotate the order so a slow moment of the machine does not always hit the same build.
  for (let i = 0; i < builds.length; i++) {
    const build = builds[(i + round) % builds.length];
    figures.get(build.name)!.push(await run(build));
  }
}
const base = percentile(figures.get(builds[0].name)!, 50);
console.log(
  `${requests} requests x ${rounds} rounds, ${concurrency} at a time, cache ${
    values["cache-both"] ? "off and on" : values.cache ? "on" : "off"
  }` +
    `${values.unique ? ", unique bodies" : ""}${
      values.stream ? `, ${paced ? values.chunks : 50}-chunk streams` : ""
    }` +
    `${paced ? `, upstream in its own process (chunks ${values.paced} ms apart)` : ""}`,
);
// Each round's builds run back to back: the ratio within a round is less shaken by the machine's load than
// either figure alone (paired rounds; the quartiles say how much the pairs still disagree).
// The last columns pair each build with the first build of its kind (a keyed build with the first keyed one: the
// before/after of a change to what the kind adds), and with its own checkout's first build (what keys or the cache
// add to that checkout).
console.log(
  "| build | CPU us/req (median) | min | max | vs first | paired: median ratio (quartiles) | paired to the first of its kind | paired to its checkout's first |",
);
console.log("|---|---|---|---|---|---|---|---|");
const first = figures.get(builds[0].name)!;
const paired = (values: number[], to: number[]) => {
  const ratios = values.map((value, round) => value / to[round]);
  return `${percentile(ratios, 50).toFixed(3)}x (${percentile(ratios, 25).toFixed(3)}-${
    percentile(ratios, 75).toFixed(3)
  })`;
};
for (const build of builds) {
  const values = figures.get(build.name)!;
  const median = percentile(values, 50);
  const firstOfKind = figures.get(builds.find((other) => other.kind === build.kind)!.name)!;
  const checkoutFirst = figures.get(builds.find((other) => other.root === build.root)!.name)!;
  console.log(
    `| ${build.name} | ${median.toFixed(1)} | ${Math.min(...values).toFixed(1)} | ${
      Math.max(...values).toFixed(1)
    } | ${(median / base).toFixed(3)}x | ${paired(values, first)} | ${paired(values, firstOfKind)} | ${
      paired(values, checkoutFirst)
    } |`,
  );
}
await paced?.stop();
Deno.exit(0);
