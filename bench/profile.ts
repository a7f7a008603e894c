/**
 * Where the proxy's time goes: runs the proxy under `deno run --cpu-prof` with the fake upstream, holds it under
 * wrk load (64 connections of non-streamed chat requests), stops it so V8 writes the profile, and prints the
 * summary of bench/cpuprofile.ts.
 *
 *   deno run -A bench/profile.ts [--duration 10] [--connections 64] [--main PATH] [--out DIR] [--top 30]
 *                                [--cache] [--unique] [--redis] [--log-level error] [--bare] [--streams N]
 *                                [--feature NAME]
 *
 * `--cache` turns the proxy's cache on; `--unique` makes every request body unique (with `--cache`: all misses).
 * `--redis` puts the proxy's state on a `redis-server` started for the run.
 * `--bare` profiles the bare pass-through (bench/passthrough.ts) instead, for comparison.
 * `--streams N` holds it under 50-chunk chat streams instead (chunks 10 ms apart, N at once, batch after batch for
 * the duration); the summary then counts streams.
 * `--feature NAME` profiles the proxy with that feature of bench/features.ts on (its config, store, key and request).
 */

import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type CpuProfile, formatSummary, summarize } from "./cpuprofile.ts";
import { BENCH_GROUP, V8_FLAGS, writeConfig } from "./proxy_config.ts";
import { startRedis } from "../tests/_support/redis.ts";
import { startServer, startUpstream } from "./server_process.ts";
import { timeStream } from "./streams.ts";
import { featureNames, FeatureRig } from "./features.ts";
import { ensureWrk, runWrk } from "./wrk.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const HERE = new URL(".", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    main: { type: "string", default: `${ROOT}main.ts` },
    out: { type: "string" },
    top: { type: "string", default: "30" },
    cache: { type: "boolean", default: false },
    unique: { type: "boolean", default: false },
    redis: { type: "boolean", default: false },
    "log-level": { type: "string", default: "error" },
    bare: { type: "boolean", default: false },
    streams: { type: "string", default: "0" },
    feature: { type: "string" },
  },
});
const main = resolve(values.main);
const out = values.out ?? await Deno.makeTempDir({ prefix: "llmproxy-cpuprof-" });
const connections = Number(values.connections);

await ensureWrk();
await using upstream = await startUpstream();
await using redis = values.redis ? await startRedis() : undefined;
const config = await writeConfig({ upstreamUrl: upstream.url, cache: values.cache, redisUrl: redis?.url });
const profiled = ["run", "-A", "--cpu-prof", `--cpu-prof-dir=${out}`];
await using rig = new FeatureRig(upstream.url);
const feature = values.feature === undefined
  ? undefined
  : await rig.start("proxy", main, featureNames([values.feature])[0], {
    cache: values.cache,
    body: jsonBody(),
    flags: profiled.slice(2),
  });
const proxy = feature?.server ?? (values.bare
  ? await startServer("bare pass-through", {
    args: [...profiled, `${HERE}passthrough.ts`, upstream.url],
    cwd: ROOT,
  })
  : await startServer("proxy", {
    args: [
      ...profiled,
      V8_FLAGS,
      main,
      "--config",
      config,
      "--port",
      "0",
      "--log-level",
      values["log-level"],
    ],
    cwd: dirname(main),
  }));
let requests = 0;
try {
  if (Number(values.streams) > 0) {
    requests = await streamLoad(proxy.url, Number(values.streams), Number(values.duration));
  } else {
    requests = await jsonLoad(proxy.url);
  }
} finally {
  await proxy.stop(40_000);
  await Deno.remove(config);
}
const files = [...Deno.readDirSync(out)].filter((e) => e.name.endsWith(".cpuprofile")).map((e) =>
  `${out}/${e.name}`
);
const newest = files.map((path) => ({ path, mtime: Deno.statSync(path).mtime?.getTime() ?? 0 }))
  .sort((a, b) => b.mtime - a.mtime)[0];
if (!newest) throw new Error(`the proxy wrote no .cpuprofile to ${out}; did it exit cleanly?`);
console.log(`profile: ${newest.path}\n`);
const profile = JSON.parse(await Deno.readTextFile(newest.path)) as CpuProfile;
console.log(formatSummary(summarize(profile, Number(values.top)), requests));

/** wrk load of non-streamed chat requests; returns the requests served. */
async function jsonLoad(url: string): Promise<number> {
  const result = await runWrk({
    url: `${url}${feature?.path ?? "/v1/chat/completions"}`,
    connections,
    threads: connections === 1 ? 1 : 2,
    durationS: Number(values.duration),
    body: feature?.body ?? jsonBody(),
    unique: values.unique,
    headers: feature?.headers ??
      { "content-type": "application/json", authorization: "Bearer sk-bench-client" },
  });
  console.log(
    `${result.requests} requests, ${
      result.rps.toFixed(0)
    } req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms (profiler on)`,
  );
  return result.requests;
}

function jsonBody(): string {
  return JSON.stringify({
    model: BENCH_GROUP,
    messages: [{
      role: "user",
      content: values.unique ? "Question %UNIQUE%" : "Say hello to the benchmark.",
    }],
  });
}

/** Batches of `count` concurrent 50-chunk streams for `seconds`; returns the streams served. */
async function streamLoad(url: string, count: number, seconds: number): Promise<number> {
  using client = Deno.createHttpClient({});
  const request = {
    url: `${url}/v1/chat/completions`,
    body: JSON.stringify({ model: BENCH_GROUP, stream: true, messages: [{ role: "user", content: "Hi" }] }),
    headers: feature?.headers ??
      { "content-type": "application/json", authorization: "Bearer sk-bench-client" },
    client,
  };
  const until = performance.now() + seconds * 1000;
  let served = 0;
  while (performance.now() < until) {
    await Promise.all(Array.from({ length: count }, () => timeStream(request, 60_000)));
    served += count;
  }
  console.log(`${served} streams of 50 chunks, ${count} at a time (profiler on)`);
  return served;
}
