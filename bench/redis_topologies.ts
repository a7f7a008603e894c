/**
 * The cache over Redis, standalone next to a 3-master Redis Cluster: cache-hit latency (p50 and p99 at one
 * connection, every answer a HIT) and cache-miss throughput (64 connections of unique bodies: every request a
 * lock script, an upstream call and a write). The proxy and the fake upstream are their own processes; Redis runs
 * with no persistence on 127.0.0.1. Part of `deno task bench`; alone:
 *
 *   deno run -A bench/redis_topologies.ts [--duration SECONDS] [--main PATH] [--standalone]
 *
 * `--main` measures another build's entry point (e.g. a snapshot before a change), with its own deno.json;
 * `--standalone` skips the cluster (a build from before the cluster fixes would break its budgets there).
 */

import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startRedis } from "../tests/_support/redis.ts";
import { startCluster } from "../tests/_support/redis_cluster.ts";
import { measureCacheHits } from "./cache_hits.ts";
import { BENCH_GROUP, configYaml, V8_FLAGS } from "./proxy_config.ts";
import { startServer, startUpstream } from "./server_process.ts";
import { ensureWrk, runWrk } from "./wrk.ts";

export interface TopologyFigures {
  readonly topology: "standalone" | "cluster (3 masters)";
  readonly hitP50Ms: number | null;
  readonly hitP99Ms: number | null;
  readonly missRps: number;
  readonly missP50Ms: number;
  readonly errors: number;
}

const ROOT = new URL("..", import.meta.url).pathname;
const ROUTE = "/v1/chat/completions";
const HEADERS = { "content-type": "application/json" };
const BODY = JSON.stringify({ model: BENCH_GROUP, messages: [{ role: "user", content: "Say hello." }] });
const UNIQUE_BODY = JSON.stringify({
  model: BENCH_GROUP,
  messages: [{ role: "user", content: "Q %UNIQUE%" }],
});

async function measure(
  topology: TopologyFigures["topology"],
  upstreamUrl: string,
  redisYaml: string[],
  durationS: number,
  main: string,
): Promise<TopologyFigures> {
  const path = await Deno.makeTempFile({ prefix: "llmproxy-bench-", suffix: ".yaml" });
  await Deno.writeTextFile(path, configYaml({ upstreamUrl, cache: true }) + redisYaml.join("\n") + "\n");
  await using proxy = await startServer(`proxy (${topology})`, {
    args: ["run", "-A", V8_FLAGS, main, "--config", path, "--port", "0", "--log-level", "error"],
    // The entry's own directory, so its deno.json (imports, unstable flags) applies.
    cwd: dirname(main),
  });
  await Deno.remove(path);
  const url = proxy.url + ROUTE;
  const hits = await measureCacheHits({ url, body: BODY, headers: HEADERS, durationS });
  const misses = { url, threads: 2, body: UNIQUE_BODY, headers: HEADERS, unique: true };
  await runWrk({ ...misses, connections: 64, durationS: Math.min(2, durationS) }); // warm-up
  const load = await runWrk({ ...misses, connections: 64, durationS });
  return {
    topology,
    hitP50Ms: hits.ok ? hits.wrk.p50Ms : null,
    hitP99Ms: hits.ok ? hits.wrk.p99Ms : null,
    missRps: Math.round(load.rps),
    missP50Ms: load.p50Ms,
    errors: load.non2xx + load.socketErrors + (hits.ok ? hits.wrk.non2xx + hits.wrk.socketErrors : 0),
  };
}

/** Standalone, then the cluster, on one fake upstream; each Redis started here and stopped after. */
export async function measureTopologies(
  upstreamUrl: string,
  durationS: number,
  options: { main?: string; standaloneOnly?: boolean } = {},
): Promise<TopologyFigures[]> {
  const main = resolve(options.main ?? `${ROOT}main.ts`);
  const rows: TopologyFigures[] = [];
  {
    await using redis = await startRedis();
    rows.push(await measure("standalone", upstreamUrl, [`  redis_url: ${redis.url}`], durationS, main));
  }
  if (!options.standaloneOnly) {
    await using cluster = await startCluster();
    const nodes = ["  redis_cluster_nodes:", ...cluster.seeds.map((seed) => `    - ${seed}`)];
    rows.push(await measure("cluster (3 masters)", upstreamUrl, nodes, durationS, main));
  }
  return rows;
}

export function topologyTable(rows: readonly TopologyFigures[]): string {
  const ms = (value: number | null) => (value === null ? "n/a" : value.toFixed(2));
  const lines = [
    "| Redis               | cache hit p50 ms | cache hit p99 ms | cache-miss req/s (64 conn) | miss p50 ms | errors |",
    "| ------------------- | ---------------- | ---------------- | -------------------------- | ----------- | ------ |",
    ...rows.map((row) =>
      `| ${row.topology.padEnd(19)} | ${ms(row.hitP50Ms).padStart(16)} | ${
        ms(row.hitP99Ms).padStart(16)
      } | ` +
      `${String(row.missRps).padStart(26)} | ${ms(row.missP50Ms).padStart(11)} | ${
        String(row.errors).padStart(6)
      } |`
    ),
  ];
  return lines.join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      duration: { type: "string", default: "5" },
      main: { type: "string" },
      standalone: { type: "boolean", default: false },
    },
  });
  await ensureWrk();
  await using upstream = await startUpstream();
  const rows = await measureTopologies(upstream.url, Number(values.duration), {
    main: values.main,
    standaloneOnly: values.standalone,
  });
  console.log(topologyTable(rows));
}
