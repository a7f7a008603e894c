/**
 * The bench's memory figures alone, in under a minute: RSS idle (after one request, as `deno task bench` reads
 * it) and the RSS peak while N streams are open at once, for the bare pass-through and each proxy build, with the
 * bench's own config (cache off, memory store). RSS is not moved by other load on the machine, so this is the quick
 * loop for memory work; `deno task bench` stays the figure of record.
 *
 *   deno run -A bench/memory.ts [--main A/main.ts --main B/main.ts ...] [--concurrent 1000] [--held]
 *                               [--v8-flags FLAGS]
 *
 * `--held` adds the memory per open stream without the garbage of a burst: fresh servers on an upstream that
 * sends a chunk every 200 ms, N streams opened and read, RSS taken 2 s after the last one got its first chunk
 * (each stream then has 8 s to go).
 * `--v8-flags` replaces the bench's V8 flags for the proxy builds (e.g. `--max-semi-space-size=8,--lazy`), to try one;
 * given several times, each build runs once per flag set (`name --max-semi-space-size=8`, ...), to weigh them.
 * `--bundle` also runs each build bundled as `deno task bundle` bundles it (`scripts/bundle.ts`): `name+bundle`.
 */

import { basename, dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { bundle } from "../scripts/bundle.ts";
import { BENCH_GROUP, V8_FLAGS, writeConfig } from "./proxy_config.ts";
import { readMemory, RssSampler } from "./rss.ts";
import { type ServerProcess, startServer, startUpstream, warmEntry } from "./server_process.ts";
import { concurrentStreams } from "./streams.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const HERE = new URL(".", import.meta.url).pathname;
const HEADERS = { "content-type": "application/json", authorization: "Bearer sk-bench-client" };
const messages = [{ role: "user", content: "Say hello to the benchmark." }];
const STREAM_BODY = JSON.stringify({ model: BENCH_GROUP, stream: true, messages });

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    main: { type: "string", multiple: true },
    concurrent: { type: "string", default: "1000" },
    held: { type: "boolean", default: false },
    bundle: { type: "boolean", default: false },
    "v8-flags": { type: "string", multiple: true },
  },
});
const mains = (values.main ?? [`${ROOT}main.ts`]).map((path) => resolve(path));
const concurrent = Number(values.concurrent);
/** The V8 flag sets each build runs with: the bench's, or each `--v8-flags` given (a target per set). */
const flagSets = values["v8-flags"]?.map((flags) => `--v8-flags=${flags}`) ?? [V8_FLAGS];
const delay = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));
const url = (server: ServerProcess) => `${server.url}/v1/chat/completions`;

interface Target {
  readonly name: string;
  readonly server: ServerProcess;
}

/** An upstream sending `chunkDelayMs` apart, the bare pass-through and every build in front of it. */
async function startTargets(servers: ServerProcess[], chunkDelayMs: number): Promise<Target[]> {
  const upstream = await startUpstream(["--chunks", "50", "--chunk-delay-ms", String(chunkDelayMs)]);
  servers.push(upstream);
  const config = await writeConfig({ upstreamUrl: upstream.url, cache: false });
  const targets: Target[] = [];
  const bare = await startServer("bare", {
    args: ["run", "-A", `${HERE}passthrough.ts`, upstream.url],
    cwd: ROOT,
  });
  servers.push(bare);
  targets.push({ name: "bare", server: bare });
  for (const main of mains) {
    for (
      const [suffix, entry] of [["", main], ...(values.bundle ? [["+bundle", await bundled(main)]] : [])]
    ) {
      await warmEntry(entry, dirname(main));
      for (const v8 of flagSets) {
        const name = basename(dirname(main)) + suffix + (flagSets.length > 1 ? ` ${v8.slice(11)}` : "");
        const server = await startServer(name, {
          args: ["run", "-A", v8, entry, "--config", config, "--port", "0", "--log-level", "error"],
          // The build's own directory, so its deno.json (unstable flags) applies to the bundle too.
          cwd: dirname(main),
        });
        servers.push(server);
        targets.push({ name, server });
      }
    }
  }
  await Deno.remove(config);
  for (const { name, server } of targets) {
    const response = await fetch(url(server), {
      method: "POST",
      headers: HEADERS,
      body: JSON.stringify({ model: BENCH_GROUP, messages }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`${name} answered HTTP ${response.status}: ${text}`);
  }
  return targets;
}

/** `main` bundled into a temporary directory (made once per build); returns the bundle's entry. */
const bundles = new Map<string, string>();
async function bundled(main: string): Promise<string> {
  const known = bundles.get(main);
  if (known) return known;
  const entry = await bundle(await Deno.makeTempDir({ prefix: "llmproxy-bundle-" }), main);
  bundles.set(main, entry);
  return entry;
}

/** RSS with `count` slow streams open and flowing, 2 s after the last got its first chunk. */
async function heldMiB(server: ServerProcess, count: number): Promise<number> {
  using client = Deno.createHttpClient({});
  const abort = new AbortController();
  const readers = await Promise.all(Array.from({ length: count }, async () => {
    const response = await fetch(url(server), {
      method: "POST",
      headers: HEADERS,
      body: STREAM_BODY,
      client,
      signal: AbortSignal.any([abort.signal, AbortSignal.timeout(30_000)]),
    });
    const reader = response.body!.getReader();
    await reader.read();
    return reader;
  }));
  // Read on meanwhile, as a client does, so the streams flow.
  const reading = readers.map(async (reader) => {
    try {
      while (!(await reader.read()).done);
    } catch { /* cancelled */ }
  });
  await delay(2000);
  const rss = readMemory(server.pid).rssMiB;
  abort.abort();
  await Promise.all(reading);
  return rss;
}

const servers: ServerProcess[] = [];
try {
  const targets = await startTargets(servers, 10);
  await delay(1000);
  const idle = new Map(targets.map(({ name, server }) => [name, readMemory(server.pid).rssMiB]));
  const peak = new Map<string, number>();
  for (const { name, server } of concurrent > 0 ? targets : []) {
    const sampler = new RssSampler(server.pid, 100);
    using client = Deno.createHttpClient({});
    const result = await concurrentStreams(
      { url: url(server), body: STREAM_BODY, headers: HEADERS, client },
      concurrent,
      60_000,
    );
    sampler.stop();
    if (result.completed !== concurrent) {
      throw new Error(`${name}: ${result.completed}/${concurrent} streams`);
    }
    peak.set(name, sampler.maxMiB);
    await delay(500);
  }
  const held = new Map<string, number>();
  if (values.held) {
    for (const server of servers.splice(0).reverse()) await server.stop();
    const slow = await startTargets(servers, 200);
    await delay(1000);
    for (const { name, server } of slow) {
      const before = readMemory(server.pid).rssMiB;
      held.set(name, ((await heldMiB(server, concurrent)) - before) * 1024 * 1024 / concurrent / 1000);
    }
  }
  const ratio = (map: Map<string, number>, name: string) => (map.get(name)! / map.get("bare")!).toFixed(2);
  console.log(
    `| build | RSS idle MiB | / bare | RSS peak, ${concurrent} streams MiB | / bare |` +
      (values.held ? ` RSS per held stream KB | / bare |` : ""),
  );
  console.log("|---|---|---|---|---|" + (values.held ? "---|---|" : ""));
  for (const { name } of targets) {
    console.log(
      `| ${name} | ${idle.get(name)!.toFixed(1)} | ${ratio(idle, name)}x | ${
        (peak.get(name) ?? NaN).toFixed(1)
      } | ${ratio(peak, name)}x |` +
        (values.held ? ` ${held.get(name)!.toFixed(0)} | ${ratio(held, name)}x |` : ""),
    );
  }
} finally {
  for (const server of servers.reverse()) await server.stop();
  for (const entry of bundles.values()) await Deno.remove(dirname(entry), { recursive: true });
}
