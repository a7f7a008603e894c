/**
 * Which pages of the deno executable each server has resident when idle (1 s after one chat request, as
 * `deno task bench` reads RSS idle for issue 22.4a), and which of the pages the proxy has and the bare pass-through
 * has not (the gap) each other target has too. Pages come from /proc/PID/pagemap (present bit, by file offset, so
 * they compare across processes; the kernel maps up to 16 pages around each fault of a file-backed mapping, so
 * read it in 64 KiB steps). Fresh processes, targets in a rotating order; a page counts for a target when it
 * was resident in more than half its rounds, and is in the gap when the bare had it in none.
 *
 *   deno run -A bench/binary_pages.ts --main A/main.ts [--main B/main.ts ...] [--v8 EXTRA_FLAGS ...]
 *                                     [--probe NAME[,NAME...] ...] [--keys N] [--rounds 3]
 *
 * The first `--main` (bundled as `deno task bundle` does, into a new directory) is the proxy whose gap is split;
 * each `--v8` runs it once more with those V8 flags added to the bench's (e.g. `--v8=--no-opt,--no-maglev`); each
 * `--probe` runs bench/probe_start.ts: the bare pass-through after using, at its start, what the names say.
 * `--keys N`: the proxies' config has N client keys (`keys:`, bench/proxy_config.ts), the bench's client's last.
 */

import { basename, dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { bundle } from "../scripts/bundle.ts";
import { BENCH_GROUP, V8_FLAGS, writeConfig } from "./proxy_config.ts";
import { readMemory } from "./rss.ts";
import { startServer, startUpstream, warmEntry } from "./server_process.ts";

const HERE = new URL(".", import.meta.url).pathname;
const BINARY = Deno.execPath();
const PAGE = 4096;

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    main: { type: "string", multiple: true },
    v8: { type: "string", multiple: true },
    probe: { type: "string", multiple: true },
    rounds: { type: "string", default: "3" },
    keys: { type: "string", default: "0" },
  },
});

interface Target {
  readonly name: string;
  readonly args: (upstreamUrl: string, config: string) => string[];
  readonly cwd: string;
}

/** The file offsets (in pages) of the executable's pages resident in process `pid`. */
export function residentBinaryPages(pid: number, binary = BINARY): Set<number> {
  const pages = new Set<number>();
  using pagemap = Deno.openSync(`/proc/${pid}/pagemap`);
  for (const line of Deno.readTextFileSync(`/proc/${pid}/maps`).split("\n")) {
    const mapping = line.match(/^([0-9a-f]+)-([0-9a-f]+) \S{4} ([0-9a-f]+) \S+ \S+\s*(.*)$/);
    if (!mapping || mapping[4] !== binary) continue;
    const start = parseInt(mapping[1], 16);
    const count = (parseInt(mapping[2], 16) - start) / PAGE;
    const entries = new Uint8Array(count * 8);
    pagemap.seekSync((start / PAGE) * 8, Deno.SeekMode.Start);
    for (let read = 0; read < entries.length;) {
      const got = pagemap.readSync(entries.subarray(read));
      if (!got) break;
      read += got;
    }
    const view = new DataView(entries.buffer);
    const first = parseInt(mapping[3], 16) / PAGE;
    // Bit 63 of each 64-bit entry: the page is present.
    for (let i = 0; i < count; i++) if (view.getUint32(i * 8 + 4, true) & 0x8000_0000) pages.add(first + i);
  }
  return pages;
}

const median = (numbers: number[]) => numbers.toSorted((a, b) => a - b)[Math.floor(numbers.length / 2)];
const mib = (pages: number) => (pages * PAGE / 1024 / 1024).toFixed(2);

/** The pages resident in more than half of `rounds`. */
function most(rounds: Set<number>[]): Set<number> {
  const counts = new Map<number, number>();
  for (const round of rounds) for (const page of round) counts.set(page, (counts.get(page) ?? 0) + 1);
  return new Set([...counts].filter(([, count]) => count * 2 > rounds.length).map(([page]) => page));
}

async function main(): Promise<void> {
  const mains = (values.main ?? []).map((path) => resolve(path));
  if (mains.length === 0) {
    console.error("usage: binary_pages.ts --main A/main.ts [--main ...] [--v8 FLAGS] [--probe NAME,...]");
    Deno.exit(2);
  }
  const dirs: string[] = [];
  const targets: Target[] = [{
    name: "bare",
    args: (upstreamUrl) => ["run", "-A", `${HERE}passthrough.ts`, upstreamUrl],
    cwd: `${HERE}..`,
  }];
  for (const [index, main] of mains.entries()) {
    const dir = await Deno.makeTempDir({ prefix: "llmproxy-pages-" });
    dirs.push(dir);
    const entry = await bundle(dir, main);
    await warmEntry(entry, dirname(main));
    const name = basename(dirname(main));
    const run = (v8: string) => (_: string, config: string) => [
      "run",
      "-A",
      v8,
      entry,
      "--config",
      config,
      "--port",
      "0",
      "--log-level",
      "error",
    ];
    targets.push({ name, args: run(V8_FLAGS), cwd: dirname(main) });
    if (index > 0) continue;
    for (const extra of values.v8 ?? []) {
      targets.push({ name: `${name} ${extra}`, args: run(`${V8_FLAGS},${extra}`), cwd: dirname(main) });
    }
  }
  for (const names of values.probe ?? []) {
    targets.push({
      name: `probe ${names}`,
      args: (upstreamUrl) => ["run", "-A", `${HERE}probe_start.ts`, upstreamUrl, names],
      cwd: `${HERE}..`,
    });
  }

  const rounds = Number(values.rounds);
  const pages = new Map<string, Set<number>[]>();
  const rss = new Map<string, number[]>();
  await using upstream = await startUpstream();
  const config = await writeConfig({ upstreamUrl: upstream.url, cache: false, keys: Number(values.keys) });
  const body = JSON.stringify({ model: BENCH_GROUP, messages: [{ role: "user", content: "Say hello." }] });
  try {
    for (let round = 0; round < rounds; round++) {
      for (let turn = 0; turn < targets.length; turn++) {
        const target = targets[(turn + round) % targets.length];
        await using server = await startServer(target.name, {
          args: target.args(upstream.url, config),
          cwd: target.cwd,
        });
        const answer = await fetch(`${server.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: "Bearer sk-bench-client" },
          body,
        });
        await answer.text();
        if (answer.status !== 200) throw new Error(`${target.name} answered HTTP ${answer.status}`);
        await new Promise((done) => setTimeout(done, 1000));
        rss.set(target.name, [...rss.get(target.name) ?? [], readMemory(server.pid).rssMiB]);
        pages.set(target.name, [...pages.get(target.name) ?? [], residentBinaryPages(server.pid)]);
      }
      console.error(`round ${round + 1}/${rounds} done`);
    }
  } finally {
    await Deno.remove(config);
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }

  const bareAny = new Set(pages.get("bare")!.flatMap((round) => [...round]));
  const proxy = targets[1].name;
  const gap = new Set([...most(pages.get(proxy)!)].filter((page) => !bareAny.has(page)));
  console.log(`Idle, 1 s after one request, ${rounds} rounds; the gap: pages of the deno binary resident in`);
  console.log(`${proxy} and not in the bare: ${mib(gap.size)} MiB\n`);
  console.log("| target | RSS idle MiB | binary MiB | of the gap, MiB | over the bare, MiB |");
  console.log("|---|---|---|---|---|");
  for (const { name } of targets) {
    const held = most(pages.get(name)!);
    const inGap = [...held].filter((page) => gap.has(page)).length;
    const over = [...held].filter((page) => !bareAny.has(page)).length;
    const binary = median(pages.get(name)!.map((round) => round.size));
    console.log(
      `| ${name} | ${median(rss.get(name)!).toFixed(1)} | ${mib(binary)} | ${mib(inGap)} | ${mib(over)} |`,
    );
  }
}

if (import.meta.main) await main();
