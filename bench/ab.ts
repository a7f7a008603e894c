/**
 * Before/after for a hot-path change: several proxy builds (each a `main.ts`, e.g. of a snapshot with and without
 * the change) and the bare pass-through, on one fake upstream, measured in interleaved rounds so machine noise
 * hits them alike. Prints per build the median over rounds of throughput at 64 connections and of p50 at 1
 * connection, relative to the first build and to the bare pass-through, and RSS after the load. With `--streams N`
 * it also times 50-chunk streams (first chunk, interleaved) and opens N streams at once per build (peak RSS).
 *
 *   deno run -A bench/ab.ts --main /tmp/before/main.ts --main /tmp/after/main.ts [--rounds 3] [--duration 5]
 *                           [--streams 1000] [--cache] [--otel] [--keys 100 [--key-limits]]
 *                           [--routing weighted,least_busy,latency,tiers] [--unique] [--cache-both]
 *
 * `--otel` adds every build once more with tracing on (`OTEL_DENO=true`), exporting OTLP/HTTP to a sink this
 * script serves (it reads and drops every export), to show what tracing costs.
 *
 * `--keys N` also runs each build with N named client keys configured (`name+keys`), every request authenticated
 * by one of them; `--key-limits` gives those keys limits (checked in the store on every request) that the load
 * never reaches.
 *
 * `--v8 FLAGS` also runs every build with these V8 flags instead of the bench's (`name+v8`), e.g.
 * `--max-semi-space-size=8,--optimize-for-size`, to weigh a flag's memory against its CPU. Given several times,
 * one such run per flag set (`name+v8`, `name+v8b`, ...).
 *
 * `--routing` also runs each build once per listed strategy on a group of two endpoints (`name+latency`, ...;
 * `tiers` is weighted with priorities 0 and 1), to compare what choosing costs.
 *
 * `--unique` makes every request body unique (with the cache on: all misses, as the bench's all-miss row);
 * `--cache-both` runs each build with the cache off and once more with it on (`name+cache`), so what the cache
 * adds to a request reads within one run.
 *
 * `--feature NAME,...` also runs each build once per listed feature (`name+feature`; bench/features.ts lists them:
 * Redis, runtime keys, usage_stream, an Azure endpoint, log levels, the dashboard polling, Responses affinity...).
 */

import { basename, dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { percentile } from "./percentiles.ts";
import { BENCH_GROUP, V8_FLAGS, writeConfig } from "./proxy_config.ts";
import { cpuMs } from "./cpu_time.ts";
import { featureNames, FeatureRig } from "./features.ts";
import { readMemory, RssSampler } from "./rss.ts";
import { type ServerProcess, startServer, startUpstream } from "./server_process.ts";
import { concurrentStreams, sequentialStreams, type StreamRequest } from "./streams.ts";
import { ensureWrk, runWrk } from "./wrk.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const HERE = new URL(".", import.meta.url).pathname;
const BODY = JSON.stringify({
  model: BENCH_GROUP,
  messages: [{ role: "user", content: "Say hello to the benchmark." }],
});
const UNIQUE_BODY = BODY.replace("benchmark.", "benchmark. %UNIQUE%");
const HEADERS = { "content-type": "application/json", authorization: "Bearer sk-bench-client" };

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    main: { type: "string", multiple: true },
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "5" },
    cache: { type: "boolean", default: false },
    streams: { type: "string", default: "0" },
    otel: { type: "boolean", default: false },
    keys: { type: "string", default: "0" },
    "key-limits": { type: "boolean", default: false },
    routing: { type: "string", default: "" },
    v8: { type: "string", multiple: true },
    unique: { type: "boolean", default: false },
    "cache-both": { type: "boolean", default: false },
    feature: { type: "string", multiple: true },
  },
});
const mains = (values.main ?? []).map((path) => resolve(path));
if (mains.length === 0) {
  console.error(
    "usage: deno run -A bench/ab.ts --main A/main.ts [--main B/main.ts ...] [--rounds N] [--duration S]",
  );
  Deno.exit(2);
}
const rounds = Number(values.rounds);
const durationS = Number(values.duration);
const label = (path: string) => basename(dirname(path));
const features = featureNames(values.feature);

await ensureWrk();
const servers: ServerProcess[] = [];
// The OTLP sink of `--otel`: answers every export with an empty success after reading it.
const sink = values.otel
  ? Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    await request.arrayBuffer();
    return new Response(null, { status: 200 });
  })
  : undefined;
let rig: FeatureRig | undefined;
try {
  const upstream = await startUpstream();
  servers.push(upstream);
  rig = new FeatureRig(upstream.url);
  const config = await writeConfig({ upstreamUrl: upstream.url, cache: values.cache });
  const targets: {
    name: string;
    server: ServerProcess;
    path?: string;
    body?: string;
    headers?: Record<string, string>;
    prepare?(): Promise<void>;
  }[] = [];
  const bare = await startServer("bare", {
    args: ["run", "-A", `${HERE}passthrough.ts`, upstream.url],
    cwd: ROOT,
  });
  servers.push(bare);
  targets.push({ name: "bare", server: bare });
  const keyCount = Number(values.keys);
  const keyed = keyCount > 0
    ? await writeConfig({
      upstreamUrl: upstream.url,
      cache: values.cache,
      keys: keyCount,
      keyLimits: values["key-limits"],
    })
    : undefined;
  const routed: [string, string][] = [];
  for (const strategy of values.routing.split(",").filter((name) => name !== "")) {
    const routing = strategy as "weighted" | "least_busy" | "latency" | "tiers";
    routed.push([
      `+${routing}`,
      await writeConfig({ upstreamUrl: upstream.url, cache: values.cache, routing }),
    ]);
  }
  const cached = values["cache-both"]
    ? await writeConfig({ upstreamUrl: upstream.url, cache: true })
    : undefined;
  for (const main of mains) {
    for (const [suffix, path] of [["", config], ["+cache", cached], ["+keys", keyed], ...routed] as const) {
      if (path === undefined) continue;
      const server = await startServer(label(main) + suffix, {
        args: ["run", "-A", V8_FLAGS, main, "--config", path, "--port", "0", "--log-level", "error"],
        cwd: dirname(main),
      });
      servers.push(server);
      targets.push({ name: `${label(main)}${suffix}`, server });
    }
  }
  for (const [index, flags] of (values.v8 ?? []).entries()) {
    for (const main of mains) {
      const name = `${label(main)}+v8${index === 0 ? "" : String.fromCharCode(97 + index)}`;
      console.error(`${name}: --v8-flags=${flags}`);
      const server = await startServer(name, {
        args: [
          "run",
          "-A",
          `--v8-flags=${flags}`,
          main,
          "--config",
          config,
          "--port",
          "0",
          "--log-level",
          "error",
        ],
        cwd: dirname(main),
      });
      servers.push(server);
      targets.push({ name, server });
    }
  }
  for (const main of sink ? mains : []) {
    const server = await startServer(`${label(main)}+otel`, {
      args: ["run", "-A", V8_FLAGS, main, "--config", config, "--port", "0", "--log-level", "error"],
      cwd: dirname(main),
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sink!.addr.port}`,
        OTEL_DENO_CONSOLE: "ignore",
      },
    });
    servers.push(server);
    targets.push({ name: `${label(main)}+otel`, server });
  }
  for (const feature of features) {
    for (const main of mains) {
      const body = values.unique ? UNIQUE_BODY : BODY;
      targets.push(
        await rig.start(`${label(main)}+${feature}`, main, feature, { cache: values.cache, body }),
      );
    }
  }
  await Deno.remove(config);
  if (keyed) await Deno.remove(keyed);
  if (cached) await Deno.remove(cached);
  for (const [, path] of routed) await Deno.remove(path);
  const wrk = async (target: typeof targets[number], connections: number, seconds: number) => {
    await target.prepare?.();
    return await runWrk({
      url: `${target.server.url}${target.path ?? "/v1/chat/completions"}`,
      connections,
      threads: connections === 1 ? 1 : 2,
      durationS: seconds,
      body: target.body ?? (values.unique ? UNIQUE_BODY : BODY),
      unique: values.unique,
      headers: target.headers ?? HEADERS,
    });
  };
  for (const target of targets) await wrk(target, 64, 2);
  const rps = new Map<string, number[]>();
  const p50 = new Map<string, number[]>();
  const p99 = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  for (const { name } of targets) [rps, p50, p99, cpu].forEach((map) => map.set(name, []));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < targets.length; i++) {
      const target = targets[(i + round) % targets.length];
      const { name, server } = target;
      const before = cpuMs(server.pid);
      const load = await wrk(target, 64, durationS);
      cpu.get(name)!.push(((cpuMs(server.pid) - before) * 1000) / load.requests);
      if (load.non2xx + load.socketErrors > 0) throw new Error(`${name}: errors under load\n${load.raw}`);
      rps.get(name)!.push(load.rps);
      p99.get(name)!.push(load.p99Ms);
      p50.get(name)!.push((await wrk(target, 1, Math.max(2, Math.round(durationS / 2)))).p50Ms);
    }
    console.error(`round ${round + 1}/${rounds} done`);
  }
  const rssAfterLoad = new Map(targets.map(({ name, server }) => [name, readMemory(server.pid).rssMiB]));
  const streamFigures = new Map<string, string>();
  const streamCount = Number(values.streams);
  if (streamCount > 0) {
    const request = (target: typeof targets[number], client?: Deno.HttpClient): StreamRequest => ({
      url: `${target.server.url}/v1/chat/completions`,
      body: JSON.stringify({ model: BENCH_GROUP, stream: true, messages: [{ role: "user", content: "Hi" }] }),
      headers: target.headers ?? HEADERS,
      client,
    });
    const timed = await sequentialStreams(
      Object.fromEntries(targets.map((target) => [target.name, request(target)])),
      15,
      30_000,
    );
    for (const target of targets) {
      const { name, server } = target;
      const sampler = new RssSampler(server.pid, 100);
      using client = Deno.createHttpClient({});
      const result = await concurrentStreams(request(target, client), streamCount, 60_000);
      sampler.stop();
      streamFigures.set(
        name,
        ` ${timed[name].firstP50Ms.toFixed(2)} | ${result.completed}/${streamCount} | ${
          sampler.maxMiB.toFixed(1)
        } |`,
      );
    }
  }
  const median = (list: number[]) => percentile(list, 50);
  const first = targets[1].name;
  const lines = [
    `| build | req/s 64c | / bare | / ${first} | CPU us/req | - ${first} | p99 64c ms | p50 1c ms | - ${first} | RSS MiB |` +
    (streamCount > 0 ? ` stream first chunk p50 ms | ${streamCount} streams done | RSS peak MiB |` : ""),
    "|---|---|---|---|---|---|---|---|---|---|" + (streamCount > 0 ? "---|---|---|" : ""),
  ];
  for (const { name } of targets) {
    const r = median(rps.get(name)!);
    const l = median(p50.get(name)!);
    const c = median(cpu.get(name)!);
    lines.push(
      `| ${name} | ${r.toFixed(0)} | ${(r / median(rps.get("bare")!)).toFixed(3)} | ${
        (r / median(rps.get(first)!)).toFixed(3)
      } | ${c.toFixed(0)} | ${(c - median(cpu.get(first)!)).toFixed(0)} | ${
        median(p99.get(name)!).toFixed(2)
      } | ${l.toFixed(3)} | ${(l - median(p50.get(first)!)).toFixed(3)} | ${
        rssAfterLoad.get(name)!.toFixed(1)
      } |${streamFigures.get(name) ?? ""}`,
    );
  }
  console.log(lines.join("\n"));
  // Each build's CPU per request over the first build's in the same round: the machine's drift between rounds
  // moves both alike, so this ratio is steadier than the ratio of the medians.
  const firstCpu = cpu.get(first)!;
  console.log("\nCPU per request paired by round, / " + first + ": median (quartiles)");
  for (const { name } of targets) {
    const ratios = cpu.get(name)!.map((value, round) => value / firstCpu[round]);
    const [q1, q2, q3] = [25, 50, 75].map((p) => percentile(ratios, p).toFixed(3));
    console.log(`  ${name}: ${q2}x (${q1}-${q3})`);
  }
  console.log(
    `\nrounds ${rounds}, ${durationS} s per 64-conn run; all rps: ${
      JSON.stringify(Object.fromEntries(rps))
    }, cpu us/req: ${JSON.stringify(Object.fromEntries([...cpu].map(([k, v]) => [k, v.map(Math.round)])))}`,
  );
} finally {
  await rig?.[Symbol.asyncDispose]();
  for (const server of servers.reverse()) await server.stop();
  await sink?.shutdown();
}
