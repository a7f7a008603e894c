/**
 * What a non-streamed request allocates, and what the young-generation GC has to copy for it: figures that do not
 * move with the machine's load, unlike CPU time. Each build (a checkout's root) is loaded in a process of its own
 * with a loopback upstream, as bench/inproc.ts does, and runs chat requests 64 at a time straight into the app's
 * `fetch` (bodies with a content-length, as a client sends them).
 *
 *   deno run -A bench/alloc.ts [--root DIR]... [--requests 4000] [--top 25] [--cache] [--unique] [--stream]
 *                              [--chunks 50]
 *
 * `--stream` asks for 50-chunk chat streams instead, from the bench's fake upstream in a process of its own (chunks
 * 2 ms apart, so each event is its own read as from a real upstream; its allocations are not counted), and reads
 * them whole: the figures are then per stream. Builds before c883a9a fail it: their pipe read the upstream twice at
 * once under a reader that reads again from inside `enqueue`, as `Response.arrayBuffer()` does. `--chunks N` sets
 * the content chunks per stream (a stream is N + 3 events; `--chunks 1`: what a stream costs once, its fixed cost).
 *
 * `--served S` serves the app instead (`Deno.serve` on loopback, the handler the proxy's own server runs) and
 * loads it with wrk (64 connections, one thread, in its own process) for S seconds per measurement: the figures
 * then include what the runtime's server allocates per request (the served request, its headers and signal, the
 * answer's headers), which requests made in-process (`new Request`) do not show. Needs wrk; per request served.
 *
 * Per build it prints: bytes allocated per request (V8's sampling heap profiler, every 128 bytes, objects the GC
 * collected included), the top files and functions by bytes allocated; then, from a second run under the proxy's
 * V8 flags with `--trace-gc-nvp`: scavenges, bytes that survived a scavenge (copied) and bytes promoted, per
 * request. GC work grows with the survivors: what requests still in flight hold when a scavenge comes.
 */

import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { V8_FLAGS } from "./proxy_config.ts";
import { startUpstream } from "./server_process.ts";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    root: { type: "string", multiple: true },
    requests: { type: "string", default: "4000" },
    top: { type: "string", default: "25" },
    cache: { type: "boolean", default: false },
    unique: { type: "boolean", default: false },
    stream: { type: "boolean", default: false },
    chunks: { type: "string", default: "50" },
    served: { type: "string" },
    // Internal: the upstream's URL for `--stream`.
    upstream: { type: "string" },
    // Internal: the child process's job.
    child: { type: "string" },
  },
});
const requests = Number(values.requests);

if (values.child) {
  const { runChild } = await import("./alloc_child.ts");
  await runChild(values.child, resolve(values.root![0]), { ...values, requests });
  Deno.exit(0);
}

const roots = (values.root ?? [new URL("..", import.meta.url).pathname]).map((root) => resolve(root));
const here = new URL("alloc.ts", import.meta.url).pathname;
await using upstream = values.stream
  ? await startUpstream(["--chunk-delay-ms", "2", "--chunks", values.chunks])
  : undefined;

async function child(job: "sample" | "gc", root: string, v8: string[]): Promise<string> {
  const args = ["run", "-A", `--config=${root}/deno.json`, ...v8, here, "--child", job, "--root", root];
  args.push("--requests", String(requests), "--top", values.top);
  if (values.cache) args.push("--cache");
  if (values.unique) args.push("--unique");
  if (upstream) args.push("--stream", "--upstream", upstream.url);
  if (values.served) args.push("--served", values.served);
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), { args }).output();
  const text = new TextDecoder().decode(stdout);
  if (code !== 0) throw new Error(`${root}: ${job} failed: ${new TextDecoder().decode(stderr).slice(-2000)}`);
  return text;
}

for (const root of roots) {
  console.log(`## ${root}`);
  console.log(await child("sample", root, []));
  const trace = await child("gc", root, [`${V8_FLAGS},--trace-gc-nvp,--expose-gc`]);
  // Served: the child says how many requests it served between its two forced GCs.
  const served = Number(/served (\d+)/.exec(trace)?.[1] ?? NaN);
  console.log(gcSummary(trace, values.served ? served : requests * 5));
}

/** Scavenges, survivors and promotions between the child's two forced GCs, per request. */
function gcSummary(trace: string, measured: number): string {
  let forced = 0;
  let scavenges = 0, survived = 0, promoted = 0, marks = 0;
  for (const line of trace.split("\n")) {
    const at = line.indexOf('GC: {"pause"');
    if (at < 0) continue;
    let gc: { reason: string; gc: string; new_space_survived: number; promoted: number };
    try {
      gc = JSON.parse(line.slice(at + 4));
    } catch {
      continue; // a line cut by another write
    }
    if (gc.reason === "testing") forced++;
    else if (forced !== 1) continue;
    else if (gc.gc === "s") {
      scavenges++;
      survived += gc.new_space_survived;
      promoted += gc.promoted;
    } else marks++;
  }
  return `GC over ${measured} requests: ${scavenges} scavenges (one per ${
    (measured / scavenges).toFixed(0)
  } ` +
    `requests), survived ${(survived / measured).toFixed(0)} B/request, promoted ` +
    `${(promoted / measured).toFixed(0)} B/request, ${marks} mark-compacts\n`;
}
