/**
 * Before/after for the stream path: CPU per 50-chunk stream (chunks 10 ms apart, so every event is its own read,
 * as from a real upstream) and time to the first streamed chunk, for several proxy builds and the bare
 * pass-through on one fake upstream, in interleaved rounds so machine noise hits them alike.
 *
 *   deno run -A bench/stream_ab.ts --main /tmp/before/main.ts --main /tmp/after/main.ts [--rounds 5]
 *                                  [--streams 200] [--first 15] [--keys 10] [--nginx] [--v8 FLAGS ...] [--fresh]
 *                                  [--chunk-delay-ms 10] [--cache] [--log-level error]
 *
 * Per round: for each build `--streams` streams at once (the server's CPU time over them / streams), then
 * `--first` single streams per build one after another, the builds taking turns (time to the first chunk, the
 * stream then cancelled). Prints the medians. `--keys N` runs each build
 * with N named client keys (the bench client's among them), so a key's streamed chat is counted. `--v8 FLAGS`
 * (repeatable) also runs every build with those V8 flags instead of the bench's (`name+v8`, `name+v8b`, ...).
 * `--fresh` opens every batch's streams on new connections (a client per batch, closed after it), as bench.ts's
 * concurrent turn does: its CPU per stream then includes accepting and closing a client connection per stream;
 * without it the batches reuse one pool's connections. `--chunk-delay-ms` sets the upstream's pause between chunks
 * (default 10; shorter, and a busy proxy finds several events per read). `--cache` runs the builds with the cache on
 * (the default config's) and makes every request's body unique (all misses: each stream recorded and written).
 * `--feature NAME,...` also runs each build once per listed feature (`name+feature`, bench/features.ts; chat
 * streams only, so not `responses` or `continuation`; with `cache` every body is unique, as with `--cache`).
 * `--log-level` is the builds' (default `error`, as in the bench; `info`, the proxy's default, logs every request).
 */

import { basename, dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { percentile } from "./percentiles.ts";
import { BENCH_GROUP, V8_FLAGS, writeConfig } from "./proxy_config.ts";
import { cpuMs } from "./cpu_time.ts";
import { featureNames, FeatureRig, FEATURES } from "./features.ts";
import { startNginx } from "./nginx.ts";
import { type ServerProcess, startServer, startUpstream } from "./server_process.ts";
import { timeStream } from "./streams.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const HERE = new URL(".", import.meta.url).pathname;
const HEADERS = { "content-type": "application/json", authorization: "Bearer sk-bench-client" };
let sequence = 0;
/** The request's body: the same each time, or with `--cache` one never sent before (a cache miss). */
const body = () =>
  JSON.stringify({
    model: BENCH_GROUP,
    stream: true,
    messages: [{ role: "user", content: unique ? `Hi #${sequence++}` : "Hi" }],
  });

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    main: { type: "string", multiple: true },
    rounds: { type: "string", default: "5" },
    streams: { type: "string", default: "200" },
    first: { type: "string", default: "15" },
    keys: { type: "string", default: "0" },
    nginx: { type: "boolean", default: false },
    v8: { type: "string", multiple: true },
    fresh: { type: "boolean", default: false },
    "chunk-delay-ms": { type: "string", default: "10" },
    cache: { type: "boolean", default: false },
    feature: { type: "string", multiple: true },
    "log-level": { type: "string", default: "error" },
  },
});
const mains = (values.main ?? []).map((path) => resolve(path));
const rounds = Number(values.rounds);
const streams = Number(values.streams);
const firsts = Number(values.first);
const features = featureNames(values.feature);
/** Every body one never sent before when a build has the cache on: all misses. */
const unique = values.cache || features.some((name) => FEATURES[name].config?.cache);

interface Target {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  readonly headers?: Record<string, string>;
}

const servers: { stop(): Promise<unknown> }[] = [];
let rig: FeatureRig | undefined;
try {
  const upstream = await startUpstream(["--chunk-delay-ms", values["chunk-delay-ms"]]);
  servers.push(upstream);
  rig = new FeatureRig(upstream.url);
  const targets: Target[] = [];
  const bare = await startServer("bare", {
    args: ["run", "-A", `${HERE}passthrough.ts`, upstream.url],
    cwd: ROOT,
  });
  servers.push(bare);
  targets.push({ name: "bare", url: bare.url, pid: bare.pid });
  if (values.nginx) {
    const nginx = await startNginx(upstream.url);
    if (typeof nginx === "string") console.error(`nginx: ${nginx}`);
    else {
      servers.push(nginx);
      targets.push({ name: "nginx", url: nginx.url, pid: nginx.pid });
    }
  }
  const config = await writeConfig({
    upstreamUrl: upstream.url,
    cache: values.cache,
    keys: Number(values.keys),
  });
  const flagSets = [V8_FLAGS, ...(values.v8 ?? []).map((flags) => `--v8-flags=${flags}`)];
  for (const [index, v8] of flagSets.entries()) {
    for (const main of mains) {
      const name = basename(dirname(main)) +
        (index === 0 ? "" : `+v8${index === 1 ? "" : String.fromCharCode(96 + index)}`);
      if (index > 0) console.error(`${name}: ${v8}`);
      const server: ServerProcess = await startServer(name, {
        args: ["run", "-A", v8, main, "--config", config, "--port", "0", "--log-level", values["log-level"]],
        cwd: dirname(main),
      });
      servers.push(server);
      targets.push({ name, url: server.url, pid: server.pid });
    }
  }
  for (const feature of features) {
    for (const main of mains) {
      const name = `${basename(dirname(main))}+${feature}`;
      const { server, headers } = await rig.start(name, main, feature, { cache: values.cache, body: "" });
      targets.push({ name, url: server.url, pid: server.pid, headers });
    }
  }
  await Deno.remove(config);

  const client = Deno.createHttpClient({});
  const request = (target: Target) => ({
    url: `${target.url}/v1/chat/completions`,
    body: body(),
    headers: target.headers ?? HEADERS,
    client,
  });
  const batch = async (target: Target) => {
    using fresh = values.fresh ? Deno.createHttpClient({}) : undefined;
    const results = await Promise.all(
      Array.from(
        { length: streams },
        () => timeStream({ ...request(target), client: fresh ?? client }, 60_000),
      ),
    );
    const incomplete = results.filter((result) => !result.complete).length;
    if (incomplete > 0) throw new Error(`${target.name}: ${incomplete} streams incomplete`);
  };
  /** Milliseconds to the first chunk of one stream, which is then cancelled. */
  const firstChunk = async (target: Target) => {
    const started = performance.now();
    const response = await fetch(`${target.url}/v1/chat/completions`, {
      method: "POST",
      headers: target.headers ?? HEADERS,
      body: body(),
      client,
      signal: AbortSignal.timeout(30_000),
    });
    const reader = response.body!.getReader();
    await reader.read();
    const ms = performance.now() - started;
    await reader.cancel();
    return ms;
  };
  for (const target of targets) await batch(target); // warm up (JIT, connections)
  const cpu = new Map(targets.map((target) => [target.name, [] as number[]]));
  const first = new Map(targets.map((target) => [target.name, [] as number[]]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < targets.length; i++) {
      const target = targets[(i + round) % targets.length];
      const before = cpuMs(target.pid);
      await batch(target);
      cpu.get(target.name)!.push(((cpuMs(target.pid) - before) * 1000) / streams);
    }
    // One stream per target in turn, so a slow moment of the machine hits them alike, in a rotating order (a
    // fixed order showed the last target ~0.3 ms slower, whichever build it was).
    for (let j = 0; j < firsts; j++) {
      for (let k = 0; k < targets.length; k++) {
        const target = targets[(j + k) % targets.length];
        first.get(target.name)!.push(await firstChunk(target));
      }
    }
    console.error(`round ${round + 1}/${rounds} done`);
  }
  client.close();
  const bareCpu = percentile(cpu.get("bare")!, 50);
  console.log(
    `${streams} streams at once${
      values.fresh ? " (new connections)" : ""
    } x ${rounds} rounds, ${firsts} single ` +
      "streams per round for the first chunk",
  );
  console.log("| build | CPU us/stream (median) | min | max | / bare | first chunk p50 ms |");
  console.log("|---|---|---|---|---|---|");
  for (const { name } of targets) {
    const list = cpu.get(name)!;
    const median = percentile(list, 50);
    console.log(
      `| ${name} | ${median.toFixed(0)} | ${Math.min(...list).toFixed(0)} | ${
        Math.max(...list).toFixed(0)
      } | ${(median / bareCpu).toFixed(2)}x | ${percentile(first.get(name)!, 50).toFixed(3)} |`,
    );
  }
  // Each build's CPU per stream over the first proxy build's in the same round (machine drift moves both alike).
  const base = targets.find(({ name }) => name !== "bare" && name !== "nginx")?.name ?? "bare";
  console.log(`\nCPU per stream paired by round, / ${base}: median (quartiles)`);
  for (const { name } of targets) {
    const ratios = cpu.get(name)!.map((value, round) => value / cpu.get(base)![round]);
    const [q1, q2, q3] = [25, 50, 75].map((p) => percentile(ratios, p).toFixed(3));
    console.log(`  ${name}: ${q2}x (${q1}-${q3})`);
  }
  console.log(
    `cpu us/stream: ${JSON.stringify(Object.fromEntries([...cpu].map(([k, v]) => [k, v.map(Math.round)])))}`,
  );
} finally {
  await rig?.[Symbol.asyncDispose]();
  for (const server of servers.reverse()) await server.stop();
}
