/**
 * What a cache-on proxy's first minute does to its CPU per miss, as the bench's all-miss row (22.2b) measures it:
 * per build (a checkout's root, bundled as the bench runs it), fresh processes each warmed as bench.ts warmed them
 * (10 s of hits at 1 connection, 3 s of misses at 64), then `--slices` slices of 2 s of unique bodies at 64
 * connections taking turns with the same load on the bare pass-through. With `--late` the slices start only after
 * the proxy's first minute (and 3 s more misses). Prints per slice the proxy/bare CPU ratio and the proxy's
 * mark-compacts during it (from its `--trace-gc`, a count that does not move with the machine's load), and per
 * process the median ratio, the mark-compacts in its slices and its "reduce" collections (the last-resort ones).
 *
 *   deno run -A bench/cache_warmup.ts [--root DIR]... [--procs 2] [--slices 5] [--late]
 */

import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { bundle } from "../scripts/bundle.ts";
import { cpuMs } from "./cpu_time.ts";
import { BENCH_GROUP, V8_FLAGS, writeConfig } from "./proxy_config.ts";
import { startServer, startUpstream } from "./server_process.ts";
import { runWrk } from "./wrk.ts";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    root: { type: "string", multiple: true },
    procs: { type: "string", default: "2" },
    slices: { type: "string", default: "5" },
    late: { type: "boolean", default: false },
  },
});
const roots = (values.root ?? [new URL("..", import.meta.url).pathname]).map((root) => resolve(root));
const HERE = new URL(".", import.meta.url).pathname;
const HEADERS = { "content-type": "application/json", authorization: "Bearer sk-bench-client" };
const message = (content: string) =>
  JSON.stringify({ model: BENCH_GROUP, messages: [{ role: "user", content }] });
const BODY = message("Say hello to the benchmark.");
const UNIQUE_BODY = message("Question %UNIQUE%");

const dir = await Deno.makeTempDir({ prefix: "llmproxy-cache-warmup-" });
try {
  const entries: string[] = [];
  for (const [i, root] of roots.entries()) {
    await Deno.mkdir(`${dir}/b${i}`);
    entries.push(await bundle(`${dir}/b${i}`, `${root}/main.ts`));
  }
  await using upstream = await startUpstream();
  await using bare = await startServer("bare", {
    args: ["run", "-A", `${HERE}passthrough.ts`, upstream.url],
  });
  const wrk = (url: string, connections: number, durationS: number, unique: boolean) =>
    runWrk({
      url: `${url}/v1/chat/completions`,
      connections,
      threads: connections === 1 ? 1 : 2,
      durationS,
      body: unique ? UNIQUE_BODY : BODY,
      headers: HEADERS,
      unique,
    });
  await wrk(bare.url, 64, 3, false);
  const config = await writeConfig({ upstreamUrl: upstream.url, cache: true });
  const measure = async (root: string, entry: string, trace: string): Promise<string> => {
    const args = ["run", "-A", `${V8_FLAGS},--trace-gc`, entry, "--config", config, "--port", "0"];
    await using proxy = await startServer("proxy", {
      args: [...args, "--log-level", "error"],
      cwd: root,
      outputFile: trace,
    });
    const started = performance.now();
    await wrk(proxy.url, 1, 10, false);
    await wrk(proxy.url, 64, 3, true);
    if (values.late) {
      await new Promise((done) => setTimeout(done, Math.max(0, started + 62_000 - performance.now())));
      await wrk(proxy.url, 64, 3, true);
    }
    const count = (pattern: RegExp) => (Deno.readTextFileSync(trace).match(pattern) ?? []).length;
    const ratios: number[] = [];
    const slices: string[] = [];
    let marks = 0;
    for (let slice = 0; slice < Number(values.slices); slice++) {
      const cpu: Record<string, number> = {};
      let sliceMarks = 0;
      for (const side of slice % 2 === 0 ? ["proxy", "bare"] : ["bare", "proxy"]) {
        const [pid, url] = side === "bare" ? [bare.pid, bare.url] : [proxy.pid, proxy.url];
        const [before, marksBefore] = [cpuMs(pid), count(/Mark-Compact/g)];
        const { requests } = await wrk(url, 64, 2, true);
        cpu[side] = ((cpuMs(pid) - before) * 1000) / requests;
        if (side === "proxy") sliceMarks = count(/Mark-Compact/g) - marksBefore;
      }
      marks += sliceMarks;
      ratios.push(cpu.proxy / cpu.bare);
      slices.push(
        `${(cpu.proxy / cpu.bare).toFixed(2)} (${cpu.proxy.toFixed(0)}/${
          cpu.bare.toFixed(0)
        } us, mc ${sliceMarks})`,
      );
    }
    const median = ratios.toSorted((x, y) => x - y)[ratios.length >> 1];
    const load = Deno.loadavg()[0].toFixed(1);
    return `median ${median.toFixed(2)}x, mark-compacts in its slices ${marks}, reduce collections ` +
      `${count(/\(reduce\)/g)}, load ${load}\n  ${slices.join("  ")}`;
  };
  for (let proc = 0; proc < Number(values.procs); proc++) {
    for (const [b, entry] of entries.entries()) {
      const trace = `${dir}/gc-${proc}-${b}.txt`;
      console.log(`${roots[b]} #${proc}: ${await measure(roots[b], entry, trace)}`);
    }
  }
  await Deno.remove(config);
} finally {
  await Deno.remove(dir, { recursive: true });
}
