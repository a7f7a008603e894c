/**
 * Reads a V8 `.cpuprofile` (from `deno run --cpu-prof`) and prints where the time went: the top functions by self
 * time, the top by inclusive time, and self time summed per module (hono, Deno's http/fetch internals, src/...).
 * Idle time is left out of the percentages, so they are shares of the time the process was busy.
 *
 *   deno run -A bench/cpuprofile.ts PROFILE.cpuprofile [--top 30] [--filter TEXT] [--requests N]
 */

import { parseArgs } from "node:util";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: number[];
}

export interface CpuProfile {
  readonly nodes: ProfileNode[];
  readonly samples: number[];
  readonly timeDeltas: number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface Entry {
  readonly name: string;
  readonly ms: number;
  /** Share of busy (non-idle) time. */
  readonly share: number;
}

export interface Summary {
  readonly busyMs: number;
  readonly idleMs: number;
  readonly self: Entry[];
  readonly inclusive: Entry[];
  readonly modules: Entry[];
}

const IDLE = "(idle)";

function shortUrl(url: string): string {
  if (url === "") return "";
  const npm = url.match(/node_modules\/\.deno\/([^/]+)\/node_modules\/(.*)$/) ??
    url.match(/npm\/[^/]+\/(.*)$/);
  if (npm) return npm[npm.length - 1];
  return url.replace(/^file:\/\/.*?\/(src|bench|tests)\//, "$1/").replace(
    /^file:\/\/\/.*\/(main\.ts)$/,
    "$1",
  );
}

function label(frame: CallFrame): string {
  const url = shortUrl(frame.url);
  const name = frame.functionName || "(anonymous)";
  return url ? `${name}  ${url}:${frame.lineNumber + 1}` : name;
}

/** The module a frame belongs to: an npm package, a Deno extension, a repo file, or a V8 pseudo-frame. */
function moduleOf(frame: CallFrame): string {
  const url = frame.url;
  if (url === "") return frame.functionName.startsWith("(") ? frame.functionName : "(native)";
  const npm = url.match(/node_modules\/\.deno\/([^@/]+(?:@[^@/]+)?)@/) ??
    url.match(/registry\.npmjs\.org\/([^/]+)\//);
  if (npm) return `npm:${npm[1]}`;
  const ext = url.match(/^ext:([^/]+)\/([^/]+)/);
  if (ext) return `ext:${ext[1]}/${ext[2]}`;
  return shortUrl(url);
}

export function summarize(profile: CpuProfile, top: number, filter?: string): Summary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfById = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    // timeDeltas[i] is the time before sample i; attribute the next delta to it, as Chrome DevTools does.
    const delta = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    selfById.set(id, (selfById.get(id) ?? 0) + delta);
  }
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const modules = new Map<string, number>();
  let idleMs = 0;
  let busyMs = 0;
  for (const [id, ms] of selfById) {
    const node = byId.get(id)!;
    if (node.callFrame.functionName === IDLE) {
      idleMs += ms;
      continue;
    }
    busyMs += ms;
    const name = label(node.callFrame);
    self.set(name, (self.get(name) ?? 0) + ms);
    const module = moduleOf(node.callFrame);
    modules.set(module, (modules.get(module) ?? 0) + ms);
    // Inclusive: every distinct function on the stack gets the sample once (recursion counted once).
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      if (frame.functionName === "(root)") continue;
      const key = label(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + ms);
    }
  }
  const ranked = (map: Map<string, number>) =>
    [...map].filter(([name]) => !filter || name.includes(filter))
      .sort((a, b) => b[1] - a[1]).slice(0, top)
      .map(([name, ms]) => ({ name, ms, share: busyMs > 0 ? ms / busyMs : 0 }));
  return { busyMs, idleMs, self: ranked(self), inclusive: ranked(inclusive), modules: ranked(modules) };
}

/** `requests`, when known, adds a column of microseconds per request served while the profile ran. */
export function formatSummary(summary: Summary, requests?: number): string {
  const perRequest = (ms: number) =>
    requests ? `${((ms * 1000) / requests).toFixed(1).padStart(6)} us/req  ` : "";
  const rows = (title: string, entries: Entry[]) =>
    [
      title,
      ...entries.map((e) =>
        `  ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.ms.toFixed(0).padStart(7)} ms  ${
          perRequest(e.ms)
        }${e.name}`
      ),
    ].join("\n");
  return [
    `busy ${summary.busyMs.toFixed(0)} ms (${perRequest(summary.busyMs).trim() || "-"}), idle ${
      summary.idleMs.toFixed(0)
    } ms`,
    rows("self time, by function:", summary.self),
    rows("self time, by module:", summary.modules),
    rows("inclusive time, by function:", summary.inclusive),
  ].join("\n\n");
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      top: { type: "string", default: "30" },
      filter: { type: "string" },
      requests: { type: "string" },
    },
  });
  if (positionals.length !== 1) {
    console.error("usage: deno run -A bench/cpuprofile.ts PROFILE.cpuprofile [--top N] [--filter TEXT]");
    Deno.exit(2);
  }
  const profile = JSON.parse(await Deno.readTextFile(positionals[0])) as CpuProfile;
  const requests = values.requests === undefined ? undefined : Number(values.requests);
  console.log(formatSummary(summarize(profile, Number(values.top), values.filter), requests));
}
