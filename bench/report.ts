/**
 * The bench's results, the table printed from them (Markdown, so it pastes into RESULTS.md) and the issue's
 * targets checked against them. Ratios compare figures of one run on one machine; absolute figures are noise.
 */

import type { CacheHits } from "./cache_hits.ts";
import type { Sample, Trend } from "./rss.ts";
import type { ConcurrentResult, StreamSummary } from "./streams.ts";
import { paired } from "./stream_rounds.ts";
import { percentile } from "./percentiles.ts";
import type { WrkResult } from "./wrk.ts";

export type Target = "direct" | "bare" | "nginx" | "proxy";
export const TARGETS: readonly Target[] = ["direct", "bare", "nginx", "proxy"];
/** The targets whose memory is measured (direct is the upstream itself). */
export type Server = "bare" | "nginx" | "proxy";
export const SERVERS: readonly Server[] = ["bare", "nginx", "proxy"];

export interface MemoryFigures {
  readonly idleMiB: number;
  /** 5 s after the target's own last slice of the 64-connection run. */
  readonly afterLoadMiB: number;
  /** 20 s after it, once V8 has given back what the load used (informational, no target). */
  readonly settledMiB: number;
  /** VmHWM right after the 64-connection run. */
  readonly peakMiB: number;
  /** Highest VmRSS sampled while the concurrent streams ran. */
  readonly streamsPeakMiB: number;
}

export interface SoakFigures {
  readonly minutes: number;
  readonly rps: number;
  readonly errors: number;
  readonly trend: Trend;
  readonly streams: number;
  /** The RSS series (MiB) the trend was computed from. */
  readonly samples: readonly Sample[];
}

export interface Results {
  /** Why nginx is missing from this run (its figures are then NaN and shown as n/a); undefined when it ran. */
  readonly nginxAbsent?: string;
  readonly sequential: Record<Target, WrkResult>;
  readonly load: Record<Target, WrkResult>;
  /** CPU time (user + system, all threads) of the server process per request served; direct: the upstream's. */
  readonly cpuUsPerRequest: Record<"sequential" | "load", Record<Target, number>>;
  /**
   * CPU time of the server process per 50-chunk stream over each round of concurrent streams (round order;
   * direct: n/a). 22.3a is the median of the rounds' proxy / bare ratios.
   */
  readonly cpuUsPerStream: Record<Target, number[]>;
  readonly streams: Record<Target, StreamSummary>;
  /** The first round of concurrent streams (the rows shown). */
  readonly concurrent: Record<Target, ConcurrentResult>;
  /** Concurrent streams that did not complete, over all rounds. */
  readonly concurrentFailed: Record<Target, number>;
  /** `--only streams`: only the stream rows were measured. */
  readonly onlyStreams?: boolean;
  readonly memory: Record<Server, MemoryFigures>;
  readonly cacheMemory: CacheHits;
  readonly cacheRedis: CacheHits;
  /** Cache on, every request a miss (unique bodies): the path users with the default config take. */
  readonly missLoad?: WrkResult;
  /** CPU per request of the proxy during `missLoad`. */
  readonly missCpuUs?: number;
  /** The bare's CPU per request under the same unique bodies, in slices taking turns with `missLoad`'s. */
  readonly missBareCpuUs?: number;
  readonly redisMissLoad?: WrkResult;
  readonly redisMissSequential?: WrkResult;
  readonly soak?: SoakFigures;
  /** RSS idle of `deno run main.ts` when the proxy measured is its bundle. */
  readonly idleUnbundledMiB?: number;
}

export interface Check {
  readonly name: string;
  /** null: not measured in this run (shown, not counted as a miss). */
  readonly pass: boolean | null;
  readonly detail: string;
}

const ms = (value: number) => Number.isFinite(value) ? value.toFixed(value < 10 ? 3 : 1) : "n/a";
const mib = (value: number) => Number.isFinite(value) ? value.toFixed(1) : "n/a";
const int = (value: number) => Number.isFinite(value) ? Math.round(value).toString() : "n/a";
const ratio = (a: number, b: number) => Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : "";
const signed = (value: number) =>
  Number.isFinite(value) ? `${value >= 0 ? "+" : ""}${Math.round(value)}` : "n/a";
const diffMs = (a: number, b: number) =>
  Number.isFinite(a - b) ? `${a - b >= 0 ? "+" : ""}${ms(a - b)} ms` : "";

type Row = [
  metric: string,
  direct: string,
  bare: string,
  nginx: string,
  proxy: string,
  perBare: string,
  perNginx: string,
  minusDirect: string,
];

/** One row per figure: each target's value, then the proxy's ratio to the bare and to nginx. */
export function table(r: Results): string {
  const rows: Row[] = [];
  const push = (name: string, cells: Record<Target, string>, b: number, n: number, p: number, tail = "") =>
    rows.push([name, cells.direct, cells.bare, cells.nginx, cells.proxy, ratio(p, b), ratio(p, n), tail]);
  const cells = (get: (t: Target) => string) =>
    Object.fromEntries(TARGETS.map((t) => [t, get(t)])) as Record<Target, string>;
  const each = (get: (t: Target) => number, format: (v: number) => string) => cells((t) => format(get(t)));
  const timing = (name: string, get: (t: Target) => number) =>
    push(name, each(get, ms), get("bare"), get("nginx"), get("proxy"), diffMs(get("proxy"), get("direct")));
  const count = (name: string, get: (t: Target) => number, tail = "") =>
    push(name, each(get, int), get("bare"), get("nginx"), get("proxy"), tail);
  timing("sequential p50, 1 conn (ms)", (t) => r.sequential[t].p50Ms);
  timing("sequential p99, 1 conn (ms)", (t) => r.sequential[t].p99Ms);
  count("throughput, 64 conn (req/s)", (t) => r.load[t].rps);
  for (const phase of ["sequential", "load"] as const) {
    const get = (t: Target) => r.cpuUsPerRequest[phase][t];
    const name = `CPU per request, server process, ${phase === "load" ? "64 conn" : "1 conn"} (us)`;
    count(name, get, `proxy - bare: ${signed(get("proxy") - get("bare"))} us`);
  }
  const streamCpu = (t: Target) => percentile(r.cpuUsPerStream[t], 50);
  const perRound = streamRatio(r, "bare");
  rows.push([
    `CPU per 50-chunk stream, server process, concurrent streams, median of ${perRound.each.length} rounds (us)`,
    ...TARGETS.map((t) => int(streamCpu(t))),
    pairedText(perRound),
    pairedText(streamRatio(r, "nginx")),
    `paired rounds; round 1 alone: ${perRound.first.toFixed(2)}x`,
  ] as Row);
  timing("p50 at 64 conn (ms)", (t) => r.load[t].p50Ms);
  timing("p99 at 64 conn (ms)", (t) => r.load[t].p99Ms);
  timing("stream first chunk p50 (ms)", (t) => r.streams[t].firstP50Ms);
  timing("stream first chunk p99 (ms)", (t) => r.streams[t].firstP99Ms);
  const overNginx = firstOverNginx(r);
  rows.push([
    "stream first chunk, proxy - nginx, median of paired streams (ms)",
    "",
    "",
    "",
    Number.isFinite(overNginx.median)
      ? `${diffMs(overNginx.median, 0)} (${ms(overNginx.q1)} to ${ms(overNginx.q3)})`
      : "n/a",
    "",
    "",
    "",
  ]);
  timing("stream total p50, 50 chunks (ms)", (t) => r.streams[t].totalP50Ms);
  push(
    "stream reads with >1 event / events per stream",
    cells((t) => `${r.streams[t].batchedReads} / ${r.streams[t].eventsPerStream}`),
    NaN,
    NaN,
    NaN,
  );
  const n = r.concurrent.proxy.requested;
  push(
    `${n} concurrent streams: completed`,
    cells((t) => `${r.concurrent[t].completed} (max open ${r.concurrent[t].maxOpen})`),
    NaN,
    NaN,
    NaN,
  );
  timing(`${n} concurrent streams: wall (ms)`, (t) => r.concurrent[t].wallMs);
  timing(`${n} concurrent streams: first chunk p99 (ms)`, (t) => r.concurrent[t].firstP99Ms);
  const hit = (name: string, hits: CacheHits, p: 50 | 99) => {
    const direct = p === 50 ? r.sequential.direct.p50Ms : r.sequential.direct.p99Ms;
    const value = !hits.ok ? NaN : p === 50 ? hits.wrk.p50Ms : hits.wrk.p99Ms;
    const proxy = hits.ok ? ms(value) : `n/a (${hits.reason})`;
    rows.push([name, ms(direct), "", "", proxy, "", "", diffMs(value, direct)]);
  };
  hit("cache hit p50, memory store, 1 conn (ms)", r.cacheMemory, 50);
  hit("cache hit p99, memory store, 1 conn (ms)", r.cacheMemory, 99);
  hit("cache hit p50, Redis store, 1 conn (ms)", r.cacheRedis, 50);
  hit("cache hit p99, Redis store, 1 conn (ms)", r.cacheRedis, 99);
  const memory = (name: string, get: (m: MemoryFigures) => number) => {
    const [b, g, p] = SERVERS.map((s) => get(r.memory[s]));
    rows.push([name, "", mib(b), mib(g), mib(p), ratio(p, b), ratio(p, g), ""]);
  };
  memory("RSS idle (MiB)", (m) => m.idleMiB);
  if (r.idleUnbundledMiB !== undefined) {
    const [b, g] = [r.memory.bare.idleMiB, r.memory.nginx.idleMiB];
    const p = r.idleUnbundledMiB;
    rows.push([
      "RSS idle, unbundled (deno run main.ts) (MiB)",
      "",
      mib(b),
      mib(g),
      mib(p),
      ratio(p, b),
      ratio(p, g),
      "",
    ]);
  }
  memory("RSS 5 s after 64-conn run (MiB)", (m) => m.afterLoadMiB);
  memory("RSS 20 s after 64-conn run (MiB)", (m) => m.settledMiB);
  memory("RSS peak (VmHWM) after 64-conn run (MiB)", (m) => m.peakMiB);
  memory("RSS peak during concurrent streams (MiB)", (m) => m.streamsPeakMiB);
  const proxyOnly = (name: string, value: string) => rows.push([name, "", "", "", value, "", "", ""]);
  if (r.soak) {
    const { trend } = r.soak;
    proxyOnly(
      `soak ${r.soak.minutes} min: RSS first -> last quarter (MiB)`,
      `${mib(trend.firstMiB)} -> ${mib(trend.lastMiB)} (${trend.slopeMiBPerMin.toFixed(2)} MiB/min)`,
    );
    proxyOnly(
      `soak ${r.soak.minutes} min: req/s, errors, streams`,
      `${int(r.soak.rps)}, ${r.soak.errors}, ${r.soak.streams}`,
    );
  } else {
    proxyOnly("soak", "not run (--soak MINUTES)");
  }
  for (const [store, load] of [["memory", r.missLoad], ["Redis", r.redisMissLoad]] as const) {
    if (!load) continue;
    const b = r.load.bare.rps;
    rows.push([
      `cache on, all misses: 64 conn req/s (${store} store)`,
      "",
      int(b),
      "",
      int(load.rps),
      ratio(load.rps, b),
      "",
      "",
    ]);
  }
  if (r.missCpuUs !== undefined) {
    const b = r.missBareCpuUs ?? r.cpuUsPerRequest.load.bare;
    const name = "cache on, all misses: CPU per request, 64 conn (memory store) (us)";
    rows.push([name, "", int(b), "", int(r.missCpuUs), ratio(r.missCpuUs, b), "", ""]);
  }
  if (r.redisMissSequential) {
    const p = r.redisMissSequential.p50Ms;
    const b = r.sequential.bare.p50Ms;
    const d = r.sequential.direct.p50Ms;
    rows.push([
      "cache on, all misses: sequential p50 (Redis store) (ms)",
      ms(d),
      ms(b),
      "",
      ms(p),
      ratio(p, b),
      "",
      diffMs(p, d),
    ]);
  }
  const header = [
    "metric",
    "direct",
    "bare pass-through",
    "nginx",
    "proxy",
    "proxy / bare",
    "proxy / nginx",
    "proxy - direct",
  ];
  const table = markdown(header, r.onlyStreams ? rows.filter((row) => row[0].includes("stream")) : rows);
  return r.nginxAbsent ? `${table}\n\nnginx: n/a (${r.nginxAbsent})` : table;
}

/** The proxy's CPU per stream over `reference`'s, round by round. */
function streamRatio(r: Results, reference: Target) {
  return paired(r.cpuUsPerStream.proxy, r.cpuUsPerStream[reference]);
}

/** Each sequential round's proxy first chunk minus nginx's (22.3b). */
function firstOverNginx(r: Results) {
  return paired(r.streams.proxy.firsts, r.streams.nginx.firsts, (a, b) => a - b);
}

/** A median ratio with its quartiles. */
function pairedText(p: { median: number; q1: number; q3: number }): string {
  return Number.isFinite(p.median) ? `${p.median.toFixed(2)}x (${p.q1.toFixed(2)}-${p.q3.toFixed(2)})` : "";
}

function markdown(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

/**
 * The targets: issue 22's (CPU and memory against the bare pass-through, first byte against nginx), then the
 * still-standing ones of issue 7 (throughput, latency, streams, cache hits, soak, errors).
 */
export function checks(r: Results): Check[] {
  const out: Check[] = [];
  const add = (name: string, pass: boolean | null, detail: string) => out.push({ name, pass, detail });
  const atMost = (name: string, value: number, limit: number, unit = "x") =>
    add(name, Number.isFinite(value) ? value <= limit : null, `${value.toFixed(2)}${unit}`);

  const cpu = r.cpuUsPerRequest.load;
  atMost("22.2a CPU per non-streamed request <= 1.0x bare (64 conn)", cpu.proxy / cpu.bare, 1);
  atMost(
    "22.2b cache on, all misses: CPU per request <= 1.2x bare",
    (r.missCpuUs ?? NaN) / (r.missBareCpuUs ?? cpu.bare),
    1.2,
  );
  const perRound = streamRatio(r, "bare");
  add(
    "22.3a CPU per streamed request <= 1.0x bare",
    Number.isFinite(perRound.median) ? perRound.median <= 1 : null,
    `${perRound.median.toFixed(2)}x, median of ${perRound.each.length} paired rounds (quartiles ${
      perRound.q1.toFixed(2)
    }-${perRound.q3.toFixed(2)}; round 1 alone ${perRound.first.toFixed(2)}x)`,
  );
  // The streams take turns one by one: each round's proxy stream minus its nginx stream, the median of those.
  const overNginx = firstOverNginx(r);
  const p50s = r.streams.proxy.firstP50Ms - r.streams.nginx.firstP50Ms;
  if (r.nginxAbsent) add("22.3b first streamed byte <= nginx's + 0.3 ms", null, `n/a: ${r.nginxAbsent}`);
  else {
    add(
      "22.3b first streamed byte <= nginx's + 0.3 ms",
      Number.isFinite(overNginx.median) ? overNginx.median <= 0.3 : null,
      `${overNginx.median.toFixed(2)} ms over nginx, median of ${overNginx.each.length} paired streams ` +
        `(quartiles ${overNginx.q1.toFixed(2)} to ${overNginx.q3.toFixed(2)}; the p50s' difference ${
          p50s.toFixed(2)
        })`,
    );
  }
  const memory = (get: (m: MemoryFigures) => number) => get(r.memory.proxy) / get(r.memory.bare);
  atMost("22.4a RSS idle <= 1.2x bare", memory((m) => m.idleMiB), 1.2);
  atMost("22.4b RSS 5 s after load <= 1.2x bare", memory((m) => m.afterLoadMiB), 1.2);
  atMost("22.4c RSS peak during concurrent streams <= 1.3x bare", memory((m) => m.streamsPeakMiB), 1.3);

  const share = r.load.proxy.rps / r.load.bare.rps;
  add("7.1 throughput at 64 conn >= 80% of bare", share >= 0.8, `${(share * 100).toFixed(1)}%`);
  const added = r.sequential.proxy.p50Ms - r.sequential.direct.p50Ms;
  add("7.2a sequential added latency (p50 proxy - direct) <= 0.3 ms", added <= 0.3, `${ms(added)} ms`);
  atMost("7.2b p99 at 64 conn <= 1.5x bare", r.load.proxy.p99Ms / r.load.bare.p99Ms, 1.5);
  // A read holding two events happens now and then when a busy machine delays any process past the upstream's
  // pause between chunks; buffering by design would show in most reads. So: at most direct's count plus 1%.
  const batched = r.streams.proxy.batchedReads;
  const events = r.streams.proxy.eventsPerStream * r.streams.proxy.count;
  const allowed = r.streams.direct.batchedReads + Math.floor(events / 100);
  add(
    "7.3b stream chunks never batched",
    batched <= allowed && r.streams.proxy.incomplete === 0,
    `${batched} of ${events} reads held >1 event (direct ${r.streams.direct.batchedReads}; allowed ${allowed}), ` +
      `${r.streams.proxy.incomplete} incomplete`,
  );
  const c = r.concurrent.proxy;
  add(
    `7.3c ${c.requested} concurrent streams all complete, none dropped`,
    c.completed === c.requested && c.maxOpen === c.requested && r.concurrentFailed.proxy === 0,
    `${c.completed}/${c.requested} completed, ${c.maxOpen} open at once (first round); ` +
      `${r.concurrentFailed.proxy} failed over ${r.cpuUsPerStream.proxy.length} rounds${
        c.errors.length ? `; ${c.errors[0]}` : ""
      }`,
  );
  const hit = (name: string, hits: CacheHits, limit: number) => {
    if (!hits.ok) add(name, null, `n/a: ${hits.reason}`);
    else add(name, hits.wrk.p50Ms <= limit, `${ms(hits.wrk.p50Ms)} ms`);
  };
  hit("7.4a cache hit p50 <= 0.3 ms (memory store)", r.cacheMemory, 0.3);
  hit("7.4b cache hit p50 <= 1 ms (Redis store)", r.cacheRedis, 1);
  if (r.soak) {
    const { trend } = r.soak;
    add(
      `7.5c no RSS growth over the ${r.soak.minutes}-minute soak`,
      trend.flat && r.soak.errors === 0,
      `${mib(trend.firstMiB)} -> ${mib(trend.lastMiB)} MiB, slope ${
        trend.slopeMiBPerMin.toFixed(2)
      } MiB/min, ` +
        `${r.soak.errors} errors`,
    );
  } else {
    add("7.5c no RSS growth over a soak", null, "not run (--soak MINUTES)");
  }
  const errors = (t: Target) =>
    r.sequential[t].non2xx + r.sequential[t].socketErrors + r.load[t].non2xx + r.load[t].socketErrors;
  add("no errors under load", errors("proxy") === 0, TARGETS.map((t) => `${t} ${errors(t)}`).join(", "));
  return out;
}

export function formatChecks(list: readonly Check[]): string {
  return list.map((c) => `${c.pass === null ? "n/a " : c.pass ? "PASS" : "FAIL"}  ${c.name}: ${c.detail}`)
    .join("\n");
}
