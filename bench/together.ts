/**
 * Before/after for the proxy's CPU cost with the machine's drift taken out: every build runs at the same time,
 * each under its own wrk, so a slow moment of the machine slows them all alike. Prints, per round, each build's
 * CPU per request (utime + stime of its process over requests served) and its ratio to the first build.
 *
 * On this project's 2-core VM, req/s of one build swung by ±30% between minutes and by ±15% between builds in one
 * interleaved round (bench/ab.ts); the per-round ratios here stay within a few percent.
 *
 *   deno run -A bench/together.ts --main A/main.ts --main B/main.ts [--rounds 4] [--duration 5] [--connections 16]
 *                                 [--redis] [--v8 FLAGS ...]
 *
 * Each `--main` is a proxy entry (or bench/minimal_gateway.ts); all run with `cache: false` and the memory store
 * on one fake upstream, with the flags the proxy ships with. `--redis` runs them with the cache on over one
 * `redis-server` instead, every body unique (all misses: the path a Redis user's new requests take). `--v8 FLAGS`
 * (repeatable, e.g. `--max-semi-space-size=32`) also runs every build with those V8 flags instead of the shipped
 * ones, to weigh a flag's CPU.
 */

import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { cpuMs } from "./cpu_time.ts";
import { percentile } from "./percentiles.ts";
import { BENCH_GROUP, V8_FLAGS, writeConfig } from "./proxy_config.ts";
import { type ServerProcess, startServer, startUpstream } from "./server_process.ts";
import { ensureWrk, runWrk } from "./wrk.ts";
import { startRedis } from "../tests/_support/redis.ts";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    main: { type: "string", multiple: true },
    rounds: { type: "string", default: "4" },
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "16" },
    redis: { type: "boolean", default: false },
    v8: { type: "string", multiple: true },
  },
});
const mains = (values.main ?? []).map((path) => resolve(path));
/** Each build with the shipped flags, then with each `--v8` set: [label, entry, Deno's V8 flag argument]. */
const runs = [V8_FLAGS, ...(values.v8 ?? []).map((flags) => `--v8-flags=${flags}`)].flatMap((v8, index) =>
  mains.map((main) => [index === 0 ? main : `${main} ${v8}`, main, v8] as const)
);
if (mains.length === 0) {
  console.error("usage: deno run -A bench/together.ts --main A/main.ts [--main B/main.ts ...] [--rounds N]");
  Deno.exit(2);
}

await ensureWrk();
const body = JSON.stringify({
  model: BENCH_GROUP,
  messages: [{
    role: "user",
    content: values.redis ? "Say hello to %UNIQUE%." : "Say hello to the benchmark.",
  }],
});
await using upstream = await startUpstream();
await using redis = values.redis ? await startRedis() : undefined;
const config = await writeConfig({ upstreamUrl: upstream.url, cache: values.redis, redisUrl: redis?.url });
const servers: ServerProcess[] = [];
try {
  for (const [label, main, v8] of runs) {
    servers.push(
      await startServer(label, {
        args: ["run", "-A", v8, main, "--config", config, "--port", "0", "--log-level", "error"],
        cwd: dirname(main),
      }),
    );
  }
  const perRound: number[][] = runs.map(() => []);
  const rates: number[][] = runs.map(() => []);
  for (let round = 0; round < Number(values.rounds); round++) {
    const before = servers.map((server) => cpuMs(server.pid));
    const loads = await Promise.all(servers.map((server) =>
      runWrk({
        url: `${server.url}/v1/chat/completions`,
        connections: Number(values.connections),
        threads: 1,
        durationS: Number(values.duration),
        body,
        headers: { "content-type": "application/json" },
        unique: values.redis,
      })
    ));
    servers.forEach((server, i) => {
      perRound[i].push(((cpuMs(server.pid) - before[i]) * 1000) / Math.max(1, loads[i].requests));
      rates[i].push(loads[i].requests / Number(values.duration));
    });
  }
  console.log(
    "| build | CPU us/req per round | median | ratio to the first, per round | median ratio | req/s |",
  );
  console.log("|---|---|---|---|---|---|");
  runs.forEach(([label], i) => {
    const ratios = perRound[i].map((us, round) => us / perRound[0][round]);
    console.log(
      `| ${label} | ${perRound[i].map((us) => us.toFixed(0)).join(" ")} | ${
        percentile(perRound[i], 50).toFixed(0)
      } | ${ratios.map((ratio) => ratio.toFixed(2)).join(" ")} | ${percentile(ratios, 50).toFixed(2)} | ${
        rates[i].map((rate) => rate.toFixed(0)).join(" ")
      } |`,
    );
  });
} finally {
  for (const server of servers) await server.stop(5000);
  await Deno.remove(config);
}
