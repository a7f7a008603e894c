/**
 * The 1,000-stream RSS peak (issue 22.4c) as `deno task bench` takes it, several times and split by what holds the
 * memory. Every measurement starts a fresh fake upstream and a fresh server (the bare pass-through, or a build
 * bundled as `deno task bundle` bundles it), sends one request, waits a second, then opens the streams as the
 * bench does (`concurrentStreams`: each holds after its first chunk until all are open). The targets take turns
 * in an order that rotates each round: a long run drifts (other load, the page cache), and whichever target came
 * later read higher in bench/memory.ts, which keeps its servers for the whole run.
 *
 *   deno run -A bench/peak.ts [--main A/main.ts --main B/main.ts ...] [--rounds 3] [--concurrent 1000]
 *                             [--v8-flags FLAGS ...] [--unbundled] [--trace DIR]
 *
 * `--feature NAME,...` also measures each build once per listed feature (`name+feature`, bench/features.ts).
 *
 * `--concurrent 0` opens no streams: it reads RSS idle instead (issue 22.4a), one second after the one request,
 * as `deno task bench` reads it, with the same split.
 *
 * At each new highest VmRSS (sampled every 100 ms) it also reads /proc/PID/smaps and splits the resident memory:
 * `v8+anon` (anonymous mappings: V8's heap pages, 256 KiB each, and thread stacks), `malloc` (glibc's main arena,
 * `[heap]`: Rust's allocations, ArrayBuffer contents), `arenas` (glibc's per-thread arenas, 64 MiB-aligned:
 * V8's compiler and GC threads), `jit` (V8's code range) and `binary` (the deno executable's pages). Medians over
 * the rounds; min-max of the peak.
 *
 * `--trace DIR` keeps, per round and target, `DIR/ROUND-TARGET.log`: everything the server printed (with
 * `--v8-flags=...,--trace-gc-nvp`, its GC timeline) followed by its VmRSS samples (`MS rss MIB`, milliseconds
 * since the server was started) and the times the burst began and ended (`MS burst-start`, `MS burst-end`), to
 * line the peak up with the collections (V8 stamps each GC line with milliseconds since its own start); and
 * `DIR/ROUND-TARGET.smaps`, the server's /proc/PID/smaps at its peak.
 */

import { basename, dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { bundle } from "../scripts/bundle.ts";
import { percentile } from "./percentiles.ts";
import { BENCH_GROUP, V8_FLAGS, writeConfig } from "./proxy_config.ts";
import { readMemory } from "./rss.ts";
import { type ServerProcess, startServer, startUpstream, warmEntry } from "./server_process.ts";
import { concurrentStreams } from "./streams.ts";
import { featureNames, FeatureRig } from "./features.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const HERE = new URL(".", import.meta.url).pathname;
const HEADERS = { "content-type": "application/json", authorization: "Bearer sk-bench-client" };
const messages = [{ role: "user", content: "Say hello to the benchmark." }];
const BODY = JSON.stringify({ model: BENCH_GROUP, messages });
const STREAM_BODY = JSON.stringify({ model: BENCH_GROUP, stream: true, messages });
const PARTS = ["v8+anon", "malloc", "arenas", "jit", "binary", "other"] as const;
type Part = typeof PARTS[number];

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    main: { type: "string", multiple: true },
    rounds: { type: "string", default: "3" },
    concurrent: { type: "string", default: "1000" },
    "v8-flags": { type: "string", multiple: true },
    unbundled: { type: "boolean", default: false },
    trace: { type: "string" },
    feature: { type: "string", multiple: true },
  },
});
const rounds = Number(values.rounds);
const concurrent = Number(values.concurrent);
const features = featureNames(values.feature);
const flagSets = values["v8-flags"]?.map((flags) => `--v8-flags=${flags}`) ?? [V8_FLAGS];
const delay = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

interface Target {
  readonly name: string;
  /** Arguments after `deno` given the fake upstream's URL and the config file's path. */
  readonly args: (upstreamUrl: string, config: string) => string[];
  readonly cwd: string;
  /** Started by bench/features.ts with this feature on (the bench's V8 flags), instead of with `args`. */
  readonly feature?: { readonly name: string; readonly entry: string };
}

/** Resident MiB per part of the address space, from /proc/PID/smaps. */
export function splitSmaps(smaps: string, binary: string): Record<Part, number> {
  const parts = Object.fromEntries(PARTS.map((part) => [part, 0])) as Record<Part, number>;
  let part: Part = "other";
  for (const line of smaps.split("\n")) {
    const mapping = line.match(/^([0-9a-f]+)-[0-9a-f]+ (\S{4}) \S+ \S+ \S+\s*(.*)$/);
    if (mapping) {
      const [, start, perms, path] = mapping;
      if (path === "[heap]") part = "malloc";
      else if (path === binary) part = "binary";
      else if (path) part = "other";
      else if (perms === "rwxp") part = "jit";
      else if (perms === "rw-p" && parseInt(start, 16) % (64 * 1024 * 1024) === 0) part = "arenas";
      else part = "v8+anon";
      continue;
    }
    const rss = line.match(/^Rss:\s+(\d+) kB$/);
    if (rss) parts[part] += Number(rss[1]) / 1024;
  }
  return parts;
}

async function targets(): Promise<{ list: Target[]; cleanup: () => Promise<void> }> {
  const list: Target[] = [{
    name: "bare",
    args: (upstreamUrl) => ["run", "-A", `${HERE}passthrough.ts`, upstreamUrl],
    cwd: ROOT,
  }];
  const dirs: string[] = [];
  for (const main of (values.main ?? [`${ROOT}main.ts`]).map((path) => resolve(path))) {
    let entry = main;
    if (!values.unbundled) {
      const dir = await Deno.makeTempDir({ prefix: "llmproxy-peak-" });
      dirs.push(dir);
      entry = await bundle(dir, main);
    }
    await warmEntry(entry, dirname(main));
    for (const v8 of flagSets) {
      list.push({
        name: basename(dirname(main)) + (flagSets.length > 1 ? ` ${v8.slice(11)}` : ""),
        args: (
          _,
          config,
        ) => ["run", "-A", v8, entry, "--config", config, "--port", "0", "--log-level", "error"],
        // The build's own directory, so its deno.json (unstable flags) applies to the bundle too.
        cwd: dirname(main),
      });
    }
    for (const name of features) {
      list.push({
        name: `${basename(dirname(main))}+${name}`,
        args: () => [],
        cwd: "",
        feature: { name, entry },
      });
    }
  }
  const cleanup = async () => {
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  };
  return { list, cleanup };
}

interface Peak {
  readonly peakMiB: number;
  readonly parts: Record<Part, number>;
}

/**
 * One measurement on fresh processes: the highest VmRSS during `concurrent` streams, and its split. With
 * `traceFile`, the server's output and the RSS timeline go there.
 */
async function measure(target: Target, traceFile?: string): Promise<Peak> {
  await using upstream = await startUpstream(["--chunks", "50", "--chunk-delay-ms", "10"]);
  const config = await writeConfig({ upstreamUrl: upstream.url, cache: false });
  let server: ServerProcess | undefined;
  await using rig = new FeatureRig(upstream.url);
  let headers: Record<string, string> = HEADERS;
  // A feature that changes the request (Responses, uploads, batches) idles after one of its own.
  let first = { path: "/v1/chat/completions", body: BODY };
  const started = performance.now();
  const timeline: string[] = [];
  const mark = (what: string) => timeline.push(`${(performance.now() - started).toFixed(0)} ${what}`);
  try {
    if (target.feature) {
      const started = await rig.start(target.name, target.feature.entry, target.feature.name, {
        cache: false,
        body: "",
      });
      server = started.server;
      headers = started.headers;
      if (started.path !== first.path) first = { path: started.path, body: started.body };
    } else {
      server = await startServer(target.name, {
        args: target.args(upstream.url, config),
        cwd: target.cwd,
        outputFile: traceFile,
      });
    }
    const url = `${server.url}/v1/chat/completions`;
    const answer = await fetch(`${server.url}${first.path}`, { method: "POST", headers, body: first.body });
    await answer.text();
    if (answer.status !== 200) throw new Error(`${target.name} answered HTTP ${answer.status}`);
    await delay(1000);
    const pid = server.pid;
    let peakMiB = 0;
    let parts = splitSmaps("", "");
    const sample = () => {
      try {
        const { rssMiB } = readMemory(pid);
        if (traceFile) mark(`rss ${rssMiB.toFixed(1)}`);
        if (rssMiB <= peakMiB) return;
        peakMiB = rssMiB;
        const smaps = Deno.readTextFileSync(`/proc/${pid}/smaps`);
        parts = splitSmaps(smaps, Deno.execPath());
        if (traceFile) Deno.writeTextFileSync(traceFile.replace(/\.log$/, ".smaps"), smaps);
      } catch { /* the process is gone: nothing to sample */ }
    };
    // Idle, as the bench reads it; with no streams to open, that is the figure.
    sample();
    if (concurrent === 0) return { peakMiB, parts };
    const timer = setInterval(sample, 100);
    mark("burst-start");
    using client = Deno.createHttpClient({});
    const result = await concurrentStreams(
      { url, body: STREAM_BODY, headers, client },
      concurrent,
      60_000,
    )
      .finally(() => clearInterval(timer));
    mark("burst-end");
    if (result.completed !== concurrent) {
      throw new Error(
        `${target.name}: ${result.completed}/${concurrent} streams (${result.errors.join("; ")})`,
      );
    }
    return { peakMiB, parts };
  } finally {
    await server?.stop();
    await Deno.remove(config);
    if (traceFile) await Deno.writeTextFile(traceFile, timeline.join("\n") + "\n", { append: true });
  }
}

const { list, cleanup } = await targets();
try {
  const peaks = new Map<string, Peak[]>(list.map(({ name }) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < list.length; i++) {
      const target = list[(i + round) % list.length];
      const traceFile = values.trace &&
        `${values.trace}/${round + 1}-${target.name.replace(/[^\w.-]+/g, "_")}.log`;
      const peak = await measure(target, traceFile);
      peaks.get(target.name)!.push(peak);
      const { "v8+anon": v8, malloc } = peak.parts;
      console.error(
        `round ${round + 1}/${rounds} ${target.name}: ${peak.peakMiB.toFixed(1)} MiB` +
          ` (v8+anon ${v8.toFixed(1)}, malloc ${malloc.toFixed(1)})`,
      );
    }
  }
  const median = (name: string, of: (peak: Peak) => number) => percentile(peaks.get(name)!.map(of), 50);
  const bare = median("bare", (peak) => peak.peakMiB);
  const what = concurrent === 0 ? "RSS idle, 1 s after one request" : `RSS peak during ${concurrent} streams`;
  console.log(`${what}, fresh processes, ${rounds} rounds (MiB, medians)`);
  console.log(`| target | ${concurrent === 0 ? "idle" : "peak"} | min-max | / bare | ${PARTS.join(" | ")} |`);
  console.log(`|---|---|---|---|${PARTS.map(() => "---|").join("")}`);
  for (const { name } of list) {
    const list = peaks.get(name)!.map((peak) => peak.peakMiB);
    const peak = median(name, (peak) => peak.peakMiB);
    const parts = PARTS.map((part) => median(name, (peak) => peak.parts[part]).toFixed(1));
    console.log(
      `| ${name} | ${peak.toFixed(1)} | ${Math.min(...list).toFixed(1)}-${Math.max(...list).toFixed(1)} | ${
        (peak / bare).toFixed(2)
      }x | ${parts.join(" | ")} |`,
    );
  }
} finally {
  await cleanup();
}
