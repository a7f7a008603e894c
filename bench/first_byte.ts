/**
 * The first streamed byte (issue 22.3b) as `deno task bench` reads it, with more rounds and more builds: whole
 * 50-chunk streams one after another on the global fetch pool, the targets taking turns (the fake upstream direct,
 * the bare pass-through, nginx, `bench/stream_floor.ts` and each build), so every server sleeps while the others
 * stream, as in the bench. Each round starts the rotation one target further; per target: first chunk p50 and p99
 * over all streams, p50 over nginx, and the rounds' p50s (median, min, max).
 *
 *   deno run -A bench/first_byte.ts [--main ENTRY]... [--rounds 4] [--streams 8] [--warm-json 4000]
 *                                   [--quiet-ms 15000] [--no-refs] [--log-level error]
 *
 * `--main` (repeatable; default `dist/bundle/main.js`, made by `deno task bundle`): a build's entry, started with
 * the proxy's V8 flags and a config on the fake upstream, named by its folder (`A/dist/bundle/main.js` is `A`).
 * Before the streams each build serves `--warm-json` non-streamed requests (16 at a time) and then sleeps
 * `--quiet-ms`, as the bench's proxy has served its wrk runs and waited for its settled RSS before the stream
 * phase: the request path is optimised by then, and V8's memory reducer has run. `--no-refs` leaves out the
 * direct and bare targets (nginx and the floor stay). `--log-level` is the builds' (default `error`, as in the
 * bench; `info`, the proxy's default, adds an access-log line to every request, stderr piped to this process).
 */

import { parseArgs } from "node:util";
import { startNginx } from "./nginx.ts";
import { percentile } from "./percentiles.ts";
import { V8_FLAGS, writeConfig } from "./proxy_config.ts";
import { type ServerProcess, startServer, startUpstream } from "./server_process.ts";
import { type StreamRequest, timeStream } from "./streams.ts";

const HERE = new URL(".", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const ROUTE = "/v1/chat/completions";
const HEADERS = { "content-type": "application/json", authorization: "Bearer sk-bench-client" };
const MESSAGES = [{ role: "user", content: "Hi" }];
const STREAM_BODY = JSON.stringify({ model: "bench", stream: true, messages: MESSAGES });
const JSON_BODY = JSON.stringify({ model: "bench", messages: MESSAGES });
const TIMEOUT_MS = 30_000;

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    main: { type: "string", multiple: true },
    rounds: { type: "string", default: "4" },
    streams: { type: "string", default: "8" },
    "warm-json": { type: "string", default: "4000" },
    "quiet-ms": { type: "string", default: "15000" },
    "no-refs": { type: "boolean", default: false },
    "log-level": { type: "string", default: "error" },
  },
});
const rounds = Math.max(1, Number(values.rounds));
const perRound = Math.max(1, Number(values.streams));
const warmJson = Math.max(0, Number(values["warm-json"]));
const quietMs = Math.max(0, Number(values["quiet-ms"]));
const mains = (values.main ?? [`${ROOT}dist/bundle/main.js`]).map((path) =>
  path.startsWith("/") ? path : `${Deno.cwd()}/${path}`
);

/** A build's name: the folder that holds its `main.ts`, or its `dist/bundle/main.js`. */
function buildName(entry: string): string {
  const parts = entry.split("/").filter((part) => part !== "");
  const bundle = parts.at(-2) === "bundle" && parts.at(-3) === "dist";
  return parts.at(bundle ? -4 : -2) ?? entry;
}

const servers: ServerProcess[] = [];
try {
  const upstream = await startUpstream();
  servers.push(upstream);
  const urls: Record<string, string> = {};
  if (!values["no-refs"]) {
    urls.direct = upstream.url;
    const bare = await startServer("bare", {
      args: ["run", "-A", `${HERE}passthrough.ts`, upstream.url],
      cwd: ROOT,
    });
    servers.push(bare);
    urls.bare = bare.url;
  }
  const nginx = await startNginx(upstream.url);
  if (typeof nginx === "string") console.log(`nginx: n/a (${nginx})`);
  else {
    servers.push(nginx);
    urls.nginx = nginx.url;
  }
  const config = await writeConfig({ upstreamUrl: upstream.url, cache: false, keys: 0 });
  const gateway = (name: string, entry: string) =>
    startServer(name, {
      args: [
        "run",
        "-A",
        V8_FLAGS,
        entry,
        "--config",
        config,
        "--port",
        "0",
        "--log-level",
        values["log-level"],
      ],
      cwd: ROOT,
    });
  const floor = await gateway("floor", `${HERE}stream_floor.ts`);
  servers.push(floor);
  urls.floor = floor.url;
  const builds: string[] = [];
  for (const entry of mains) {
    let name = buildName(entry);
    while (name in urls) name += "'";
    const build = await gateway(name, entry);
    servers.push(build);
    urls[name] = build.url;
    builds.push(name);
  }
  await Deno.remove(config);

  const names = Object.keys(urls);
  const request = (name: string): StreamRequest => ({
    url: urls[name] + ROUTE,
    body: STREAM_BODY,
    headers: HEADERS,
  });
  for (const name of names) await timeStream(request(name), TIMEOUT_MS); // every target's connections made
  for (const name of builds) {
    for (let sent = 0; sent < warmJson; sent += 16) {
      await Promise.all(Array.from({ length: Math.min(16, warmJson - sent) }, async () => {
        const response = await fetch(urls[name] + ROUTE, {
          method: "POST",
          headers: HEADERS,
          body: JSON_BODY,
        });
        await response.arrayBuffer();
      }));
    }
  }
  await new Promise((resolve) => setTimeout(resolve, quietMs));

  const all: Record<string, number[]> = {};
  const roundP50: Record<string, number[]> = {};
  for (const name of names) [all[name], roundP50[name]] = [[], []];
  for (let round = 0; round < rounds; round++) {
    const firsts: Record<string, number[]> = {};
    for (const name of names) firsts[name] = [];
    for (let i = 0; i < perRound; i++) {
      for (let j = 0; j < names.length; j++) {
        const name = names[(round + i + j) % names.length];
        const timing = await timeStream(request(name), TIMEOUT_MS);
        if (!timing.complete) throw new Error(`${name}: a stream ended without [DONE]`);
        firsts[name].push(timing.firstMs);
        all[name].push(timing.firstMs);
      }
    }
    for (const name of names) roundP50[name].push(percentile(firsts[name], 50));
    const load = Deno.loadavg()[0].toFixed(1);
    console.log(
      `round ${round + 1} (load ${load}): ${
        names.map((n) => `${n} ${roundP50[n].at(-1)!.toFixed(3)}`).join(", ")
      }`,
    );
  }
  const nginxP50 = all.nginx ? percentile(all.nginx, 50) : NaN;
  console.log("\nfirst chunk, ms: p50, p99, p50 over nginx | rounds' p50: median [min-max]");
  for (const name of names) {
    const p50 = percentile(all[name], 50);
    const sorted = roundP50[name].toSorted((a, b) => a - b);
    console.log(
      `${name.padEnd(10)} ${p50.toFixed(3)}  ${percentile(all[name], 99).toFixed(3)}  ` +
        `${(p50 - nginxP50).toFixed(3).padStart(6)} | ${percentile(sorted, 50).toFixed(3)} ` +
        `[${sorted[0].toFixed(3)}-${sorted.at(-1)!.toFixed(3)}]`,
    );
  }
} finally {
  for (const server of servers.reverse()) await server.stop();
}
