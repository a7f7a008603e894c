/**
 * The bench's memory figures alone, in about half a minute: RSS idle (after one request, as `deno task bench` reads
 * it) and the RSS peak while N streams are open at once, for the bare pass-through and each proxy build, with the
 * bench's own config (cache off, memory store). RSS is not moved by other load on the machine, so this is the quick
 * loop for memory work; `deno task bench` stays the figure of record.
 *
 *   deno run -A bench/memory.ts [--main A/main.ts --main B/main.ts ...] [--concurrent 1000] [--v8-flags FLAGS]
 *
 * `--v8-flags` replaces the bench's V8 flags for the proxy builds (e.g. `--max-semi-space-size=8,--lazy`), to try one.
 */

import { basename, dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { BENCH_GROUP, V8_FLAGS, writeConfig } from "./proxy_config.ts";
import { readMemory, RssSampler } from "./rss.ts";
import { type ServerProcess, startServer } from "./server_process.ts";
import { concurrentStreams } from "./streams.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const HERE = new URL(".", import.meta.url).pathname;
const HEADERS = { "content-type": "application/json", authorization: "Bearer sk-bench-client" };
const messages = [{ role: "user", content: "Say hello to the benchmark." }];

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    main: { type: "string", multiple: true },
    concurrent: { type: "string", default: "1000" },
    "v8-flags": { type: "string" },
  },
});
const mains = (values.main ?? [`${ROOT}main.ts`]).map((path) => resolve(path));
const concurrent = Number(values.concurrent);
const v8 = values["v8-flags"] === undefined ? V8_FLAGS : `--v8-flags=${values["v8-flags"]}`;
const delay = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

const servers: ServerProcess[] = [];
try {
  const upstream = await startServer("fake upstream", {
    args: ["run", "-A", `${HERE}upstream_server.ts`, "--chunks", "50", "--chunk-delay-ms", "10"],
    cwd: ROOT,
  });
  servers.push(upstream);
  const config = await writeConfig({ upstreamUrl: upstream.url, cache: false });
  const targets: { name: string; server: ServerProcess }[] = [];
  const bare = await startServer("bare", {
    args: ["run", "-A", `${HERE}passthrough.ts`, upstream.url],
    cwd: ROOT,
  });
  servers.push(bare);
  targets.push({ name: "bare", server: bare });
  for (const main of mains) {
    const server = await startServer(basename(dirname(main)), {
      args: ["run", "-A", v8, main, "--config", config, "--port", "0", "--log-level", "error"],
      cwd: dirname(main),
    });
    servers.push(server);
    targets.push({ name: basename(dirname(main)), server });
  }
  await Deno.remove(config);
  const url = (server: ServerProcess) => `${server.url}/v1/chat/completions`;
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
  await delay(1000);
  const idle = new Map(targets.map(({ name, server }) => [name, readMemory(server.pid).rssMiB]));
  const peak = new Map<string, number>();
  for (const { name, server } of concurrent > 0 ? targets : []) {
    const sampler = new RssSampler(server.pid, 100);
    using client = Deno.createHttpClient({});
    const result = await concurrentStreams(
      {
        url: url(server),
        body: JSON.stringify({ model: BENCH_GROUP, stream: true, messages }),
        headers: HEADERS,
        client,
      },
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
  const bareIdle = idle.get("bare")!;
  const barePeak = peak.get("bare") ?? NaN;
  console.log(`| build | RSS idle MiB | / bare | RSS peak, ${concurrent} streams MiB | / bare |`);
  console.log("|---|---|---|---|---|");
  for (const { name } of targets) {
    const i = idle.get(name)!;
    const p = peak.get(name) ?? NaN;
    console.log(
      `| ${name} | ${i.toFixed(1)} | ${(i / bareIdle).toFixed(2)}x | ${p.toFixed(1)} | ${
        (p / barePeak).toFixed(2)
      }x |`,
    );
  }
} finally {
  for (const server of servers.reverse()) await server.stop();
}
