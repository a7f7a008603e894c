/**
 * The cache recorder's cost per streamed chat event (`SseRecorder.push`, what every cached stream pays on its way
 * through, the cache being on by default): streams of realistic chat events, one event per chunk as from a paced
 * upstream (`--per-read N`: N events per chunk), each chunk a fresh view of a reused buffer as the upstream reader
 * hands them out. Several builds (checkouts' roots, e.g. snapshots before and after a change) load into one process
 * and run in interleaved rounds.
 *
 *   deno run -A bench/recorder.ts [--root DIR]... [--rounds 9] [--streams 2000] [--events 50] [--per-read 1]
 *
 * Prints per build the median over rounds of CPU nanoseconds per event, and the paired ratio to the first build
 * (median and quartiles of the per-round ratios).
 */

import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { percentile } from "./percentiles.ts";
import process from "node:process";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    root: { type: "string", multiple: true },
    rounds: { type: "string", default: "9" },
    streams: { type: "string", default: "2000" },
    events: { type: "string", default: "50" },
    "per-read": { type: "string", default: "1" },
  },
});
const roots = (values.root ?? ["."]).map((root) => resolve(root));
const rounds = Math.min(Number(values.rounds), 50);
const streams = Math.min(Number(values.streams), 100_000);
const eventCount = Math.min(Number(values.events), 1000);
const perRead = Math.max(1, Math.min(Number(values["per-read"]), eventCount));

interface Recorder {
  push(chunk: Uint8Array): void;
  finish(): { events: readonly string[] } | null;
}
type RecorderClass = new (route: "chat", maxBytes: number) => Recorder;

const builds: RecorderClass[] = [];
for (const root of roots) {
  const module = await import(`file://${root}/src/cache/record.ts`);
  builds.push(module.SseRecorder as RecorderClass);
}

const words = [
  "Hello",
  " there",
  ",",
  " how",
  " can",
  " I",
  " help",
  " you",
  " today",
  "?",
  " Grüße",
  " — ",
  "日本",
];
const encoder = new TextEncoder();
const events: Uint8Array[] = [];
for (let i = 0; i < eventCount; i++) {
  const chunk = {
    id: "chatcmpl-B9MHDbslfVnuDMLkQ4Kx4NYtj2mLs",
    object: "chat.completion.chunk",
    created: 1741570283,
    model: "gpt-4o-2024-08-06",
    system_fingerprint: "fp_f9f4fb6dbf",
    choices: [{ index: 0, delta: { content: words[i % words.length] }, logprobs: null, finish_reason: null }],
  };
  events.push(encoder.encode(`data: ${JSON.stringify(chunk)}\n\n`));
}
events.push(encoder.encode("data: [DONE]\n\n"));
// The chunks of one stream, each `perRead` events, as views of one reused buffer (the upstream reader's slab).
const reads: Uint8Array[] = [];
for (let i = 0; i < events.length; i += perRead) {
  const group = events.slice(i, i + perRead);
  const bytes = new Uint8Array(group.reduce((sum, e) => sum + e.length, 0));
  let at = 0;
  for (const e of group) bytes.set(e, at), at += e.length;
  reads.push(bytes);
}
const slab = new Uint8Array(64 * 1024);

function run(Build: RecorderClass): number {
  const started = process.cpuUsage();
  for (let s = 0; s < streams; s++) {
    const recorder = new Build("chat", 1 << 20);
    let at = 0;
    for (const read of reads) {
      if (at + read.length > slab.length) at = 0;
      slab.set(read, at);
      recorder.push(new Uint8Array(slab.buffer, at, read.length));
      at += read.length;
    }
    if (recorder.finish()?.events.length !== events.length) throw new Error("stream not recorded whole");
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) * 1e3 / (streams * events.length);
}

for (const Build of builds) run(Build); // warm-up
const perEvent: number[][] = builds.map(() => []);
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? builds.map((_, i) => i) : builds.map((_, i) => builds.length - 1 - i);
  for (const i of order) perEvent[i].push(run(builds[i]));
}
const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
console.log(
  `load ${Deno.loadavg()[0].toFixed(1)}; ${streams} streams x ${events.length} events, ${perRead}/read`,
);
roots.forEach((root, i) => {
  const ratios = perEvent[i].map((ns, r) => ns / perEvent[0][r]).sort((a, b) => a - b);
  console.log(
    `${root}: ${median(perEvent[i]).toFixed(0)} ns/event; ratio ${percentile(ratios, 50).toFixed(3)}x ` +
      `(${percentile(ratios, 25).toFixed(3)}-${percentile(ratios, 75).toFixed(3)})`,
  );
});
