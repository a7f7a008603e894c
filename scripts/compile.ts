/**
 * Builds the self-contained `llmproxy` executable for one or more targets with `deno compile` (Deno cross-compiles:
 * every target builds on any host). Output: `dist/llmproxy-<version>-<target>[.exe]`. The binary is compiled from
 * the bundle (`scripts/bundle.ts`, made once here), which idles at less memory than the modules of `main.ts`.
 *
 *   deno task compile:all                                     # every release target
 *   deno run -A scripts/compile.ts --target aarch64-apple-darwin
 *
 * `deno task compile` (dist/llmproxy for this machine) uses the same flags; keep the two in step.
 */

import { parseArgs } from "node:util";
import { VERSION } from "../src/version.ts";
import { bundle, BUNDLE_DIR } from "./bundle.ts";

export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/**
 * V8's young generation capped at 8 MiB per semi-space: under load the proxy's RSS stays lower than with Deno's
 * default (5 s after load 121 vs 151 MiB) at the same CPU per request; 32 MiB costs the same CPU and keeps more.
 * No heap-growth flag: each one tried lowers the 1,000-stream peak only by costing CPU per stream (README, "Ways
 * to run it"; bench/RESULTS.md, session 7). `--expose-gc`: the proxy collects its start-up garbage at its
 * first quiet moments instead of holding it until V8's memory reducer starts, 30 s in (src/serve/settle.ts).
 * `--no-allocation-site-pretenuring`: during a burst of streams, V8 decided in some runs to allocate from a few
 * of the runtime's object literals (Deno's per-connection serving, the drain of a response body, headers, event
 * targets) straight into the old generation; what those sites allocate per chunk then died there, and the
 * 1,000-stream peak read ~8 MiB higher (its "high mode": bench/RESULTS.md, session 12). No CPU cost resolvable.
 * `--no-concurrent-recompilation`: TurboFan compiles on the main thread, not on a background one whose glibc
 * arena kept ~7 MiB of compiler zones resident through a burst (the peak's "arenas": 8.8 -> 1.6 MiB). The same
 * work on another thread: CPU per request and stream unchanged within the noise (session 12).
 * Every way of running the proxy uses them: the `start`, `dev`, `demo` and `compile` tasks in deno.json, this
 * script, and the bench.
 */
export const V8_FLAGS =
  "--v8-flags=--max-semi-space-size=8,--expose-gc,--no-allocation-site-pretenuring,--no-concurrent-recompilation";

/** The permissions the binary runs with (it reads only its config file; no file writes, no subprocesses). */
export const COMPILE_FLAGS = [
  V8_FLAGS,
  "--unstable-no-legacy-abort",
  // Deno.listen's reusePort (general_settings.reuse_port / --reuse-port).
  "--unstable-net",
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-sys",
];

export function outputName(target: string, version = VERSION): string {
  return `dist/llmproxy-${version}-${target}${target.includes("windows") ? ".exe" : ""}`;
}

async function compile(target: string, entry: string): Promise<boolean> {
  const output = outputName(target);
  console.log(`compiling ${output}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["compile", ...COMPILE_FLAGS, "--target", target, "--output", output, entry],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return code === 0;
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { target: { type: "string", multiple: true }, all: { type: "boolean", default: false } },
  });
  const targets = values.all ? [...TARGETS] : values.target ?? [];
  if (targets.length === 0) {
    console.error(
      `Usage: scripts/compile.ts --all | --target T [--target T ...]\nTargets: ${TARGETS.join(", ")}`,
    );
    return 2;
  }
  const unknown = targets.filter((target) => !(TARGETS as readonly string[]).includes(target));
  if (unknown.length > 0) {
    console.error(`unknown target(s) ${unknown.join(", ")}; known: ${TARGETS.join(", ")}`);
    return 2;
  }
  await Deno.mkdir("dist", { recursive: true });
  const entry = await bundle(BUNDLE_DIR);
  let failed = 0;
  for (const target of targets) if (!(await compile(target, entry))) failed++;
  if (failed > 0) console.error(`${failed} of ${targets.length} target(s) failed`);
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
