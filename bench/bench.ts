/**
 * `deno task bench`: the proxy against a direct call to the same fake upstream, a bare Deno pass-through and
 * nginx (bench/nginx.ts; `n/a` where it cannot be installed), side by side in one run, each server its own process
 * on 127.0.0.1. Prints a table with the proxy's ratios to the bare and to nginx, checks the targets of issues 22
 * and 7 and exits 1 when one is missed (2 on bad flags).
 *
 *   deno task bench                 full run (10 s per wrk run), about 7 minutes
 *   deno task bench --quick         3 s per wrk run, fewer streams: a smoke run
 *   deno task bench --soak 10       adds a 10-minute soak of the proxy with its RSS trend
 *   deno task bench --cpu-prof DIR  runs the proxy under `deno run --cpu-prof` and leaves the profile in DIR
 *   deno task bench --only streams  the stream rows alone (after the warm-up), e.g. to see their spread
 *
 * The proxy measured is the build users run in production: `--main`'s bundle (`scripts/bundle.ts`, what the
 * binary is compiled from); the RSS idle of `deno run main.ts` is shown too. `--unbundled` measures main.ts itself.
 */

import { dirname, resolve } from "node:path";
import { bundle } from "../scripts/bundle.ts";
import { parseArgs } from "node:util";
import { hasRedis, startRedis } from "../tests/_support/redis.ts";
import { hasRedisCli } from "../tests/_support/redis_cluster.ts";
import { measureTopologies, topologyTable } from "./redis_topologies.ts";
import { type CacheHits, measureCacheHits } from "./cache_hits.ts";
import { BENCH_GROUP, V8_FLAGS, writeConfig } from "./proxy_config.ts";
import {
  checks,
  formatChecks,
  type MemoryFigures,
  type Results,
  type Server,
  SERVERS,
  table,
  type Target,
  TARGETS,
} from "./report.ts";
import { startNginx } from "./nginx.ts";
import { cpuMs } from "./cpu_time.ts";
import { readMemory } from "./rss.ts";
import { type ServerProcess, startServer, startUpstream, warmEntry } from "./server_process.ts";
import { soak } from "./soak.ts";
import { streamRounds } from "./stream_rounds.ts";
import {
  type ConcurrentResult,
  sequentialStreams,
  type StreamRequest,
  type StreamSummary,
} from "./streams.ts";
import { combineRuns, ensureWrk, runWrk, type WrkResult } from "./wrk.ts";
import { absentConcurrent, absentMemory, absentStreams, absentWrk } from "./absent.ts";

const USAGE =
  `Usage: deno task bench [--quick] [--soak MINUTES] [--duration SECONDS] [--rounds N] [--streams N]
                       [--concurrent N] [--stream-rounds N] [--chunk-delay-ms MS] [--cpu-prof DIR]
                       [--main PATH] [--unbundled] [--only streams] [--json PATH]

  --quick           3 s of wrk per measurement and 8 streams per target instead of 10 s and 30
  --soak MINUTES    after the measurements, hold the proxy under load this long and check its RSS stays flat
  --duration S      seconds of wrk per target and measurement (overrides --quick); the 64-connection phase
                    runs twice as long, in twice the slices
  --rounds N        interleaved slices those seconds are cut into (default 5, quick 3)
  --streams N       sequential 50-chunk streams per target (default 30, quick 8)
  --concurrent N    streams open at once per target (default 1000)
  --stream-rounds N rounds of those concurrent streams, the targets taking turns (default 5, quick 3); CPU
                    per stream (22.3a) is the median of the rounds' proxy / bare ratios
  --chunk-delay-ms  pause between the fake upstream's stream chunks (default 10)
  --cpu-prof DIR    run the proxy with --cpu-prof; the .cpuprofile lands in DIR when it stops
  --main PATH       the proxy entry point to measure (default: this repo's main.ts), e.g. of a snapshot
  --unbundled       measure deno run main.ts instead of its bundle (e.g. for readable --cpu-prof profiles)
  --only streams    after the first warm-up, only the streams (sequential, then concurrent rounds): their rows
                    and checks, nothing else
  --json PATH       also write the raw results as JSON
`;

const ROOT = new URL("..", import.meta.url).pathname;
const HERE = new URL(".", import.meta.url).pathname;
const HEADERS = { "content-type": "application/json", authorization: "Bearer sk-bench-client" };
const MESSAGES = [{ role: "user", content: "Say hello to the benchmark." }];
const BODY = JSON.stringify({ model: BENCH_GROUP, messages: MESSAGES });
const STREAM_BODY = JSON.stringify({ model: BENCH_GROUP, stream: true, messages: MESSAGES });
const UNIQUE_BODY = JSON.stringify({
  model: BENCH_GROUP,
  messages: [{ role: "user", content: "Question %UNIQUE%" }],
});
const ROUTE = "/v1/chat/completions";

const log = (message: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Flags {
  readonly durationS: number;
  /** Interleaved slices each wrk measurement is cut into. */
  readonly rounds: number;
  readonly warmupS: number;
  /** Seconds of unique bodies at 64 connections a cache-on proxy gets before its measured misses. */
  readonly missWarmupS: number;
  readonly streams: number;
  readonly concurrent: number;
  readonly streamRounds: number;
  readonly onlyStreams: boolean;
  readonly chunkDelayMs: number;
  readonly soakMinutes?: number;
  readonly cpuProfDir?: string;
  readonly main: string;
  readonly unbundled: boolean;
  readonly json?: string;
}

function parseFlags(args: string[]): Flags | string {
  let values;
  try {
    values = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: "boolean", default: false },
        soak: { type: "string" },
        duration: { type: "string" },
        rounds: { type: "string" },
        streams: { type: "string" },
        concurrent: { type: "string" },
        "stream-rounds": { type: "string" },
        only: { type: "string" },
        "chunk-delay-ms": { type: "string" },
        "cpu-prof": { type: "string" },
        main: { type: "string" },
        unbundled: { type: "boolean", default: false },
        json: { type: "string" },
        help: { type: "boolean", default: false },
      },
    }).values;
  } catch (error) {
    return (error as Error).message;
  }
  if (values.help) return "";
  const number = (name: string, text: string | undefined, fallback: number, min: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < min) {
      throw new RangeError(`--${name} must be a number >= ${min}, got '${text}'`);
    }
    return value;
  };
  try {
    const quick = values.quick;
    return {
      durationS: Math.round(number("duration", values.duration, quick ? 3 : 10, 1)),
      rounds: Math.round(number("rounds", values.rounds, quick ? 3 : 5, 1)),
      warmupS: quick ? 1 : 3,
      missWarmupS: quick ? 1 : 10,
      streams: Math.round(number("streams", values.streams, quick ? 8 : 30, 1)),
      concurrent: Math.round(number("concurrent", values.concurrent, 1000, 1)),
      streamRounds: Math.round(number("stream-rounds", values["stream-rounds"], quick ? 3 : 5, 1)),
      onlyStreams: only(values.only),
      chunkDelayMs: number("chunk-delay-ms", values["chunk-delay-ms"], 10, 0),
      soakMinutes: values.soak === undefined ? undefined : number("soak", values.soak, 0, 0.1),
      cpuProfDir: values["cpu-prof"],
      main: resolve(values.main ?? `${ROOT}main.ts`),
      unbundled: values.unbundled,
      json: values.json,
    };
  } catch (error) {
    return (error as Error).message;
  }
}

function only(value: string | undefined): boolean {
  if (value === undefined) return false;
  if (value === "streams") return true;
  throw new RangeError(`--only takes 'streams', got '${value}'`);
}

/** The proxy from `entry` (main.ts or its bundle). */
function startProxy(name: string, entry: string, configPath: string, flags: Flags): Promise<ServerProcess> {
  const profile = flags.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${flags.cpuProfDir}`] : [];
  const args = [
    "run",
    "-A",
    V8_FLAGS,
    ...profile,
    entry,
    "--config",
    configPath,
    "--port",
    "0",
    "--log-level",
    "error",
  ];
  // The checkout's own directory, so its deno.json (imports, unstable flags) applies.
  return startServer(name, { args, cwd: dirname(flags.main) });
}

/** The bundle of `flags.main` in a temporary directory (removed by `cleanup`). */
async function bundled(flags: Flags, cleanup: (() => Promise<unknown>)[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "llmproxy-bench-bundle-" });
  cleanup.push(() => Deno.remove(dir, { recursive: true }));
  return await bundle(dir, flags.main);
}

/** RSS idle of `deno run main.ts` (shown next to the bundle's): started alone, one request, read 1 s later. */
async function unbundledIdleMiB(configPath: string, flags: Flags): Promise<number> {
  await warmEntry(flags.main, dirname(flags.main));
  await using proxy = await startProxy("proxy (deno run main.ts)", flags.main, configPath, {
    ...flags,
    cpuProfDir: undefined,
  });
  await sanity("proxy (deno run main.ts)", proxy.url, true);
  await delay(1000);
  return readMemory(proxy.pid).rssMiB;
}

/** One request, to fail early (and clearly) when a server does not answer as the bench expects. */
async function sanity(name: string, url: string, expectProxy: boolean): Promise<void> {
  const response = await fetch(url + ROUTE, {
    method: "POST",
    headers: HEADERS,
    body: BODY,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`${name} answered HTTP ${response.status}: ${text.slice(0, 300)}`);
  }
  if (expectProxy && !response.headers.has("x-llmproxy-endpoint")) {
    throw new Error(`${name} answered without x-llmproxy-endpoint: is it the proxy?`);
  }
}

async function main(args: string[]): Promise<number> {
  const flags = parseFlags(args);
  if (typeof flags === "string") {
    if (flags === "") {
      console.log(USAGE);
      return 0;
    }
    console.error(`${flags}\n\n${USAGE}`);
    return 2;
  }
  await ensureWrk();
  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    const results = await run(flags, cleanup);
    console.log(`\n${table(results)}\n`);
    const list = checks(results).filter((c) => !flags.onlyStreams || /^(22\.3|22\.4c|7\.3)/.test(c.name));
    console.log(formatChecks(list));
    if (flags.json) await Deno.writeTextFile(flags.json, JSON.stringify(results, null, 2));
    const missed = list.filter((c) => c.pass === false);
    if (missed.length > 0) {
      console.log(
        `\n${missed.length} target(s) missed: ${missed.map((c) => c.name.split(" ")[0]).join(", ")}`,
      );
      return 1;
    }
    console.log("\nall measured targets met");
    return 0;
  } finally {
    for (const step of cleanup.reverse()) await step().catch((error) => log(`cleanup: ${error}`));
  }
}

async function run(flags: Flags, cleanup: (() => Promise<unknown>)[]): Promise<Results> {
  const upstream = await startUpstream(["--chunks", "50", "--chunk-delay-ms", String(flags.chunkDelayMs)]);
  cleanup.push(() => upstream.stop());
  const bare = await startServer("bare pass-through", {
    args: ["run", "-A", `${HERE}passthrough.ts`, upstream.url],
    cwd: ROOT,
  });
  cleanup.push(() => bare.stop());
  const nginx = await startNginx(upstream.url);
  const nginxAbsent = typeof nginx === "string" ? nginx : undefined;
  if (typeof nginx !== "string") cleanup.push(() => nginx.stop());
  else log(`nginx: n/a (${nginx})`);
  const configPath = await writeConfig({ upstreamUrl: upstream.url, cache: false });
  cleanup.push(() => Deno.remove(configPath));
  // The build users run in production: the bundle the binary is compiled from (or main.ts with --unbundled).
  const entry = flags.unbundled ? flags.main : await bundled(flags, cleanup);
  // Not the first run of this build: that one transpiles and reads 15-30 MiB higher than a deployed proxy does.
  await warmEntry(entry, dirname(flags.main));
  const proxy = await startProxy("proxy", entry, configPath, flags);
  cleanup.push(() => proxy.stop(flags.cpuProfDir ? 40_000 : 5000));
  log(
    `upstream ${upstream.url}, bare ${bare.url}, proxy ${proxy.url} (pid ${proxy.pid}, cache off, memory store)`,
  );

  const servers = { bare, proxy, ...(typeof nginx === "string" ? {} : { nginx }) };
  /** The targets measured in this run: nginx only where it could be started. */
  const targets = TARGETS.filter((t) => t === "direct" || servers[t as Server] !== undefined);
  const present = SERVERS.filter((s) => servers[s] !== undefined);
  const base = { direct: upstream.url } as Record<Target, string>;
  /** Whose CPU a run costs: the server the client talks to (the upstream itself for direct). */
  const cpuPid = { direct: upstream.pid } as Record<Target, number>;
  const pids = {} as Record<Server, number>;
  for (const s of present) {
    base[s] = servers[s]!.url;
    cpuPid[s] = pids[s] = servers[s]!.pid;
  }
  const cpuUsPerRequest = {
    sequential: { nginx: NaN } as Record<Target, number>,
    load: { nginx: NaN } as Record<Target, number>,
  };
  for (const t of targets) await sanity(t, base[t], t === "proxy");
  await delay(1000);
  const idle = { nginx: NaN } as Record<Server, number>;
  for (const s of present) idle[s] = readMemory(pids[s]).rssMiB;
  const idleUnbundledMiB = flags.unbundled || flags.onlyStreams
    ? undefined
    : await unbundledIdleMiB(configPath, flags);

  const wrk = (t: Target, connections: number, durationS: number) =>
    runWrk({
      url: base[t] + ROUTE,
      connections,
      threads: connections === 1 ? 1 : 2,
      durationS,
      body: BODY,
      headers: HEADERS,
    });
  /** When each target's last slice of load ended: its "after load" memory is read that long after. */
  const loadEndedAt: Record<Target, number> = { direct: 0, bare: 0, nginx: 0, proxy: 0 };
  /**
   * `durationS` per target, cut into `rounds` slices that take turns (the order rotating each round), so a burst of
   * load from elsewhere on the machine lands on every target alike instead of on whichever ran then.
   */
  const interleaved = async (phase: "sequential" | "load", connections: number, rounds: number) => {
    const sliceS = Math.max(1, Math.round(flags.durationS / flags.rounds));
    const slices = Object.fromEntries(targets.map((t) => [t, [] as WrkResult[]])) as Record<
      Target,
      WrkResult[]
    >;
    const cpu = { direct: 0, bare: 0, nginx: 0, proxy: 0 };
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < targets.length; i++) {
        const t = targets[(i + round) % targets.length];
        const before = cpuMs(cpuPid[t]);
        slices[t].push(await wrk(t, connections, sliceS));
        cpu[t] += cpuMs(cpuPid[t]) - before;
        loadEndedAt[t] = performance.now();
      }
    }
    const results = { nginx: absentWrk() } as Record<Target, WrkResult>;
    for (const t of targets) {
      results[t] = combineRuns(slices[t]);
      cpuUsPerRequest[phase][t] = (cpu[t] * 1000) / results[t].requests;
    }
    return results;
  };

  log(`warm-up: ${flags.warmupS} s at 64 connections per target`);
  for (const t of targets) await wrk(t, 64, flags.warmupS);

  const absentPerServer = () => ({ bare: NaN, nginx: NaN, proxy: NaN });
  let sequential = Object.fromEntries(TARGETS.map((t) => [t, absentWrk()])) as Record<Target, WrkResult>;
  let load = sequential;
  const peak = absentPerServer();
  const afterLoadMiB = absentPerServer();
  const settledMiB = absentPerServer();
  if (!flags.onlyStreams) {
    const slicing = `${flags.durationS} s per target in ${flags.rounds} interleaved slices`;
    log(`sequential latency: 1 connection, ${slicing}`);
    sequential = await interleaved("sequential", 1, flags.rounds);

    // The 1-connection phase leaves the proxy's JIT with other type feedback (V8 re-optimizes, and deopts some
    // functions, on the first 64-connection slices after it: `--trace-opt` counted 36-136 compiles in the first
    // slice): a second warm-up, every target alike, so the measured slices find each server in its steady state.
    log(`warm-up again: ${flags.warmupS} s at 64 connections per target`);
    for (const t of targets) await wrk(t, 64, flags.warmupS);
    // Twice the slices here: 22.2a's CPU per request is read from this phase, and five slices of one build swung
    // 0.82-1.23x between runs (session 12).
    const loadSlicing = `${2 * flags.durationS} s per target in ${2 * flags.rounds} interleaved slices`;
    log(`throughput: 64 connections, ${loadSlicing}`);
    load = await interleaved("load", 64, 2 * flags.rounds);
    for (const s of present) peak[s] = readMemory(pids[s]).peakMiB;
    // Each target's RSS is read 5 s after ITS OWN last slice: the slices take turns, so one target may have been
    // idle seconds longer than another when the phase ends, and V8 gives memory back about 8-10 s after load stops
    // (the figures swung 1.0x-2.6x with the slice order before). A settled reading 20 s after follows, for
    // information.
    const byEnd = present.toSorted((a, b) => loadEndedAt[a] - loadEndedAt[b]);
    for (const t of byEnd) {
      await delay(Math.max(0, loadEndedAt[t] + 5000 - performance.now()));
      afterLoadMiB[t] = readMemory(pids[t]).rssMiB;
    }
    for (const t of byEnd) {
      await delay(Math.max(0, loadEndedAt[t] + 20_000 - performance.now()));
      settledMiB[t] = readMemory(pids[t]).rssMiB;
    }
  }

  log(`streams: ${flags.streams} sequential 50-chunk streams per target`);
  const streamRequest = (t: Target, client?: Deno.HttpClient): StreamRequest => ({
    url: base[t] + ROUTE,
    body: STREAM_BODY,
    headers: HEADERS,
    client,
  });
  const streamTargets = Object.fromEntries(targets.map((t) => [t, streamRequest(t)])) as Record<
    Target,
    StreamRequest
  >;
  const streams = {
    nginx: absentStreams(),
    ...await sequentialStreams(streamTargets, flags.streams, 30_000),
  } as Record<Target, StreamSummary>;

  log(`${flags.concurrent} concurrent streams per target, ${flags.streamRounds} rounds taking turns`);
  // Each server serves only its own streams while its turn runs, so its CPU over the turn is theirs: CPU per
  // stream from hundreds of streams, not a few sequential ones at 10 ms clock ticks (direct: the upstream serves
  // everyone's, no figure). The first round is the single batch per server the bench took before session 20;
  // the rounds after it take turns again, so 22.3a's ratio is read round by round (bench/stream_rounds.ts).
  const rounds = await streamRounds({
    targets,
    rounds: flags.streamRounds,
    count: flags.concurrent,
    timeoutMs: 60_000,
    request: streamRequest,
    cpuPid: (t) => t === "direct" ? undefined : cpuPid[t],
    rssPid: (t) => t === "direct" ? undefined : pids[t],
    pauseMs: 500,
  });
  // nginx where it could not be started: no rounds, its figures n/a.
  const concurrent: Record<Target, ConcurrentResult> = Object.assign(
    { nginx: absentConcurrent(flags.concurrent) },
    rounds.first,
  );
  const cpuUsPerStream: Record<Target, number[]> = Object.assign({ nginx: [] }, rounds.cpuUs);
  const concurrentFailed: Record<Target, number> = Object.assign({ nginx: 0 }, rounds.failed);
  const streamsPeak: Record<Target, number> = Object.assign({ nginx: NaN }, rounds.peakMiB);
  const memory = { nginx: absentMemory() } as Record<Server, MemoryFigures>;
  for (const t of present) {
    memory[t] = {
      idleMiB: idle[t],
      afterLoadMiB: afterLoadMiB[t],
      settledMiB: settledMiB[t],
      peakMiB: peak[t],
      streamsPeakMiB: streamsPeak[t],
    };
  }

  /** What every run reports, `--only streams` too (its request rows then n/a). */
  const measured = {
    nginxAbsent,
    sequential,
    load,
    cpuUsPerRequest,
    cpuUsPerStream,
    streams,
    concurrent,
    concurrentFailed,
    memory,
  };
  if (flags.onlyStreams) {
    const notRun: CacheHits = { ok: false, reason: "not run (--only streams)" };
    return { ...measured, cacheMemory: notRun, cacheRedis: notRun, onlyStreams: true };
  }

  const unique = (url: string, connections: number, durationS: number) =>
    runWrk({
      url: url + ROUTE,
      connections,
      threads: connections === 1 ? 1 : 2,
      durationS,
      body: UNIQUE_BODY,
      headers: HEADERS,
      unique: true,
    });

  /** A proxy with the cache on: hit latency at 1 connection, then unique bodies (all misses). */
  const cachePhase = async (label: string, redisUrl?: string) => {
    const path = await writeConfig({ upstreamUrl: upstream.url, cache: true, redisUrl });
    await using cached = await startProxy(label, entry, path, { ...flags, cpuProfDir: undefined });
    await Deno.remove(path);
    await sanity(label, cached.url, true);
    const hits = await measureCacheHits({
      url: cached.url + ROUTE,
      body: BODY,
      headers: HEADERS,
      durationS: flags.durationS,
    });
    // As long on misses at 64 connections as the main proxy was on its path before its measured slices (3 s +
    // 10 s at 1 connection + 3 s): the hits above ran other code.
    await unique(cached.url, 64, flags.missWarmupS);
    const sequential = redisUrl ? await unique(cached.url, 1, flags.durationS) : undefined;
    return { hits, sequential, ...await missesBesideBare(cached.url, cached.pid) };
  };

  /**
   * 64 connections of unique bodies on the cache-on proxy, in `rounds` slices that take turns with the same load
   * on the bare (order alternating), so 22.2b divides two CPU figures taken in the same minutes, not one from
   * the interleaved phase long before (the VM's speed drifts between phases).
   */
  const missesBesideBare = async (url: string, pid: number) => {
    const sliceS = Math.max(1, Math.round(flags.durationS / flags.rounds));
    const slices: WrkResult[] = [];
    const cpu = { bare: 0, proxy: 0 };
    let bareRequests = 0;
    for (let round = 0; round < flags.rounds; round++) {
      for (const side of round % 2 === 0 ? ["proxy", "bare"] as const : ["bare", "proxy"] as const) {
        const at = side === "bare" ? cpuPid.bare : pid;
        const before = cpuMs(at);
        const result = await unique(side === "bare" ? base.bare : url, 64, sliceS);
        cpu[side] += cpuMs(at) - before;
        if (side === "bare") bareRequests += result.requests;
        else slices.push(result);
      }
    }
    const load = combineRuns(slices);
    return { load, cpuUs: (cpu.proxy * 1000) / load.requests, bareCpuUs: (cpu.bare * 1000) / bareRequests };
  };

  log("cache, memory store: hit latency, then 64 connections of misses");
  const memoryCache = await cachePhase("proxy (cache, memory)");
  const cacheMemory = memoryCache.hits;
  const missLoad = memoryCache.load;
  const missCpuUs = memoryCache.cpuUs;
  const missBareCpuUs = memoryCache.bareCpuUs;

  let cacheRedis: CacheHits = { ok: false, reason: "redis-server is not installed" };
  let redisMissLoad: WrkResult | undefined;
  let redisMissSequential: WrkResult | undefined;
  if (hasRedis) {
    log("cache, Redis store: hit latency, then misses at 1 and 64 connections");
    await using redis = await startRedis();
    const redisCache = await cachePhase("proxy (cache, Redis)", redis.url);
    cacheRedis = redisCache.hits;
    redisMissSequential = redisCache.sequential;
    redisMissLoad = redisCache.load;
  }
  if (hasRedis && hasRedisCli) {
    log("Redis standalone next to a 3-master Redis Cluster: cache-hit latency, cache-miss throughput");
    console.log(`\n${topologyTable(await measureTopologies(upstream.url, flags.durationS))}\n`);
  }

  let soakFigures;
  if (flags.soakMinutes !== undefined) {
    log(`soak: ${flags.soakMinutes} min of 64 connections plus 16 streams at a time on the proxy`);
    soakFigures = await soak({
      minutes: flags.soakMinutes,
      pid: proxy.pid,
      wrk: { url: proxy.url + ROUTE, body: BODY, headers: HEADERS },
      stream: streamRequest("proxy"),
      streamConcurrency: 16,
    });
    const every = Math.max(1, Math.round(soakFigures.samples.length / 20));
    const series = soakFigures.samples.filter((_, i) => i % every === 0);
    log(
      `soak RSS (MiB): ${
        series.map((s) => `${Math.round(s.atMs / 1000)}s=${s.rssMiB.toFixed(0)}`).join(" ")
      }`,
    );
  }

  if (flags.cpuProfDir) log(`stopping the proxy; its CPU profile goes to ${flags.cpuProfDir}`);
  return {
    ...measured,
    cacheMemory,
    cacheRedis,
    missLoad,
    missCpuUs,
    missBareCpuUs,
    redisMissLoad,
    redisMissSequential,
    soak: soakFigures,
    idleUnbundledMiB,
  };
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
