/**
 * The process bench/alloc.ts starts per build: loads the build's app with a loopback upstream, warms it up, then
 * either samples what the requests allocate (`sample`) or runs five times as many between two forced GCs while V8
 * writes its GC trace (`gc`).
 */

import { Session } from "node:inspector";
import { BENCH_GROUP, CHAT_ANSWER, configYaml } from "./proxy_config.ts";

interface ChildOptions {
  readonly requests: number;
  readonly top: string;
  readonly cache: boolean;
  readonly unique: boolean;
  readonly stream: boolean;
  /** With `stream`: the fake upstream's URL (a process of its own). */
  readonly upstream?: string;
  /** Seconds of wrk load on the served app per measurement (see bench/alloc.ts `--served`). */
  readonly served?: string;
}

interface HeapNode {
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
  readonly selfSize: number;
  readonly children: HeapNode[];
}

const ANSWER = CHAT_ANSWER;

export async function runChild(job: string, root: string, options: ChildOptions): Promise<void> {
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    await request.text();
    return new Response(ANSWER, {
      headers: { "content-type": "application/json", "x-ratelimit-remaining-requests": "9999" },
    });
  });
  const upstreamUrl = options.upstream ?? `http://127.0.0.1:${upstream.addr.port}`;
  const fetchApp = await loadApp(root, upstreamUrl, options.cache);
  if (options.served) {
    await runServed(job, root, fetchApp, options);
    await upstream.shutdown();
    return;
  }
  let sequence = 0;
  const run = async (count: number) => {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        const content = options.unique ? `Say hello. #${sequence++}` : "Say hello.";
        const body = JSON.stringify({
          model: BENCH_GROUP,
          messages: [{ role: "user", content }],
          ...(options.stream ? { stream: true } : {}),
        });
        const response = await fetchApp(
          new Request("http://127.0.0.1/v1/chat/completions", {
            method: "POST",
            headers: { "content-type": "application/json", "content-length": String(body.length) },
            body,
          }),
        );
        if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
        await response.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
  };
  await run(3000); // warm-up: the JIT, the pools, the young generation's size
  if (job === "gc") {
    // Two forced GCs mark where the measured requests begin and end in V8's own trace (its lines and this
    // process's writes are not ordered on stdout).
    const gc = (globalThis as unknown as { gc: () => void }).gc;
    gc();
    await run(options.requests * 5);
    gc();
  } else {
    const profile = await sampled(() => run(options.requests));
    console.log(summary(profile, options.requests, Number(options.top)));
  }
  await upstream.shutdown();
}

/** `--served`: the app behind the root's own server, loaded by wrk; the same measurements per request served. */
async function runServed(
  job: string,
  root: string,
  fetchApp: (request: Request) => Promise<Response>,
  options: ChildOptions,
): Promise<void> {
  const { serve } = await import(`file://${root}/src/serve/server.ts`);
  const server = serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      maxConnections: 10_000,
      keepaliveTimeoutMs: 60_000,
      headerTimeoutMs: 10_000,
    },
    fetchApp,
  );
  const { runWrk } = await import("./wrk.ts");
  const load = (seconds: number) =>
    runWrk({
      url: `http://127.0.0.1:${server.addr.port}/v1/chat/completions`,
      connections: 64,
      threads: 1,
      durationS: seconds,
      body: JSON.stringify({ model: BENCH_GROUP, messages: [{ role: "user", content: "Say hello." }] }),
      headers: { "content-type": "application/json" },
    });
  const seconds = Number(options.served);
  await load(3); // warm-up
  const before = server.requests;
  if (job === "gc") {
    const gc = (globalThis as unknown as { gc: () => void }).gc;
    gc();
    await load(seconds * 2);
    gc();
    console.log(`served ${server.requests - before}`);
  } else {
    const profile = await sampled(() => load(seconds).then(() => {}));
    console.log(summary(profile, server.requests - before, Number(options.top)));
  }
  await server.shutdown();
}

async function loadApp(root: string, upstreamUrl: string, cache: boolean) {
  // parse.ts since session 10; load.ts in older snapshots.
  const parseConfig = (await import(`file://${root}/src/config/load.ts`)).parseConfig ??
    (await import(`file://${root}/src/config/parse.ts`)).parseConfig;
  const { buildServices } = await import(`file://${root}/src/services.ts`);
  const { createApp } = await import(`file://${root}/src/app.ts`);
  const { createLogger } = await import(`file://${root}/src/logger.ts`);
  const config = parseConfig(configYaml({ upstreamUrl, cache }), "alloc.yaml", () => undefined);
  const services = await buildServices(config, { logger: createLogger({ level: "error", write: () => {} }) });
  const app = createApp(services);
  return (request: Request): Promise<Response> => Promise.resolve(app.fetch(request));
}

/** The heap profile of what `work` allocates, collected objects included. */
async function sampled(work: () => Promise<void>): Promise<HeapNode> {
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params: object = {}) =>
    new Promise<T>((resolve, reject) =>
      session.post(
        method,
        params,
        (error: unknown, result: unknown) => error ? reject(error) : resolve(result as T),
      )
    );
  await post("HeapProfiler.enable");
  await post("HeapProfiler.startSampling", {
    samplingInterval: 128,
    includeObjectsCollectedByMinorGC: true,
    includeObjectsCollectedByMajorGC: true,
  });
  await work();
  const { profile } = await post<{ profile: { head: HeapNode } }>("HeapProfiler.stopSampling");
  session.disconnect();
  return profile.head;
}

const short = (url: string) =>
  url.replace(/^file:\/\/.*?\/(src|bench)\//, "$1/").replace(/^.*\/(npm|registry\.npmjs\.org)\//, "npm:");

function summary(head: HeapNode, requests: number, top: number): string {
  const byFile = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  const add = (map: Map<string, number>, key: string, size: number) =>
    map.set(key, (map.get(key) ?? 0) + size);
  // A builtin (`subarray`, `then`: no url) is listed with the function that called it.
  const walk = (node: HeapNode, caller: string) => {
    const { functionName, url, lineNumber } = node.callFrame;
    total += node.selfSize;
    const name = `${functionName || "(anonymous)"}  ${short(url)}:${lineNumber + 1}`;
    add(byFile, short(url) || functionName || "(native)", node.selfSize);
    add(byFunction, url ? name : `${functionName || "(native)"} <- ${caller}`, node.selfSize);
    for (const child of node.children) walk(child, url ? name : caller);
  };
  walk(head, "(root)");
  const rows = (map: Map<string, number>) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, top)
      .map(([name, size]) => `${(size / requests).toFixed(0).padStart(8)}  ${name}`);
  return [
    `allocated ${(total / requests).toFixed(0)} B/request (${requests} requests, sampled every 128 bytes)`,
    "by file (B/request):",
    ...rows(byFile),
    "by function (B/request, its own allocations):",
    ...rows(byFunction),
  ].join("\n");
}
