/**
 * What a client can make the HTTP engine read into memory while one of its requests is being answered (session
 * 19, "the engine's reads"): each case sends a request head to the proxy (a bundle or main.ts, run as its own
 * process), then up to `--mib` MiB more on the same connection in 1 MiB writes, for at most `--seconds`, while
 * the upstream holds its answer for `--hold-ms`. Sampled every 50 ms: the proxy's VmRSS; every 100 ms from another
 * connection: `/health`. A fresh proxy per case. A body longer than its declared length is `chat_then_junk`: the
 * engine takes what follows the declared length as the next request.
 *
 * `--nginx` sends every case through nginx in front of the proxy (bench/nginx.ts's config: HTTP/1.1 keep-alive to
 * the proxy, request bodies buffered, 10 MiB at most, WebSocket upgrades passed) and adds nginx's peak RSS.
 *
 *   deno run -A bench/engine_reads.ts [--main dist/bundle/main.js] [--mib 300] [--seconds 8] [--hold-ms 6000]
 *                                     [--nginx] [--case NAME ...]
 */

import { parseArgs } from "node:util";
import { startNginx } from "./nginx.ts";
import { type ServerProcess, startServer } from "./server_process.ts";
import { V8_FLAGS } from "./proxy_config.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    main: { type: "string", default: "dist/bundle/main.js" },
    mib: { type: "string", default: "300" },
    seconds: { type: "string", default: "8" },
    "hold-ms": { type: "string", default: "6000" },
    case: { type: "string", multiple: true, default: [] },
    nginx: { type: "boolean", default: false },
  },
});
const MIB = Number(values.mib);
const SECONDS = Number(values.seconds);
const HOLD_MS = Number(values["hold-ms"]);
const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An upstream that holds every answer (and every WebSocket handshake) for HOLD_MS; `/refuse/` refuses upgrades. */
const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
  await request.body?.cancel();
  if (request.url.includes("/stream/")) return streamed();
  await sleep(HOLD_MS);
  if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
    if (request.url.includes("/refuse/")) return new Response("no", { status: 403 });
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onopen = () => socket.send(JSON.stringify({ type: "session.created" }));
    return response;
  }
  return Response.json({
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 1,
    model: "m",
    choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });
});

/** A chat stream of one event every 200 ms for HOLD_MS. */
function streamed(): Response {
  const event = JSON.stringify({
    id: "c",
    object: "chat.completion.chunk",
    created: 1,
    model: "m",
    choices: [{ index: 0, delta: { content: "x" }, finish_reason: null }],
  });
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent > 0) await sleep(200);
      if (sent++ * 200 >= HOLD_MS) {
        controller.enqueue(encoder.encode("data: [DONE]\n\n"));
        return controller.close();
      }
      controller.enqueue(encoder.encode(`data: ${event}\n\n`));
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

const chat = JSON.stringify({ model: "g", messages: [{ role: "user", content: "hi" }] });
const streamChat = JSON.stringify({ model: "s", stream: true, messages: [{ role: "user", content: "hi" }] });
const head = (lines: string[]) => lines.join("\r\n") + "\r\n\r\n";
const upgrade = (path: string) =>
  head([
    `GET ${path} HTTP/1.1`,
    "host: 127.0.0.1",
    "upgrade: websocket",
    "connection: Upgrade",
    "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version: 13",
  ]);
const post = (path: string, length = chat.length) =>
  head([
    `POST ${path} HTTP/1.1`,
    "host: 127.0.0.1",
    "content-type: application/json",
    `content-length: ${length}`,
  ]);
const junk = new Uint8Array(1 << 20).fill(0x78);
const pipelined = encoder.encode(
  "GET /health HTTP/1.1\r\nhost: x\r\n\r\n".repeat(Math.floor((1 << 20) / 34)),
);
/** 16 whole chunks of 64 KiB: a chunked body that goes on as long as the client likes. */
const chunks = encoder.encode(("10000\r\n" + "x".repeat(0x10000) + "\r\n").repeat(16));

interface Case {
  readonly head: string;
  /** What follows the head, 1 MiB at a time. */
  readonly filler: Uint8Array;
}

const CASES: Record<string, Case> = {
  // The realtime handshake held by the upstream: the client sends frames (here junk) before its 101.
  realtime_before_101: { head: upgrade("/v1/realtime?model=g"), filler: junk },
  // A chat whose whole body came with its head, answered after HOLD_MS, then junk.
  chat_then_junk: { head: post("/v1/chat/completions") + chat, filler: junk },
  // A streamed chat, its events sent for HOLD_MS, junk sent meanwhile.
  stream_then_junk: {
    head: post("/v1/chat/completions", streamChat.length) + streamChat,
    filler: junk,
  },
  // The same, the junk being valid pipelined requests.
  chat_then_pipelined: { head: post("/v1/chat/completions") + chat, filler: pipelined },
  // A GET with a (small, whole) body to a route answered upstream.
  get_with_body: {
    head: head([
      "GET /v1/files/file-1 HTTP/1.1",
      "host: 127.0.0.1",
      "x-llmproxy-model-group: g",
      "content-length: 5",
    ]) + "hello",
    filler: junk,
  },
  // A chunked body that never ends, to a route that does not read it.
  chunked_unread: {
    head: head(["GET /v1/models HTTP/1.1", "host: 127.0.0.1", "transfer-encoding: chunked"]),
    filler: chunks,
  },
  // An upgrade the proxy refuses at once (no such route), then junk.
  upgrade_refused: { head: upgrade("/v1/chat/completions"), filler: junk },
  // A realtime upgrade refused after HOLD_MS (the upstream refuses its handshake), then junk.
  upgrade_refused_late: { head: upgrade("/v1/realtime?model=r"), filler: junk },
  // The chunked body that never ends, to a route that reads it (the chat): the body limit applies.
  chunked_chat: {
    head: post("/v1/chat/completions").replace(/content-length: \d+/, "transfer-encoding: chunked"),
    filler: chunks,
  },
};

async function rss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(status.match(/^VmRSS:\s+(\d+)/m)![1]) / 1024;
}

async function runCase(name: string, attack: Case) {
  const config = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(
    config,
    [
      "model_groups:",
      "  - model_group: g",
      "    models:",
      "      - model: m",
      "        params:",
      `          base_url: http://127.0.0.1:${upstream.addr.port}/v1`,
      "          api_key: sk-upstream",
      "  - model_group: s",
      "    models:",
      "      - model: m",
      "        params:",
      `          base_url: http://127.0.0.1:${upstream.addr.port}/stream/v1`,
      "          api_key: sk-upstream",
      "  - model_group: r",
      "    models:",
      "      - model: m",
      "        params:",
      `          base_url: http://127.0.0.1:${upstream.addr.port}/refuse/v1`,
      "          api_key: sk-upstream",
      "general_settings:",
      "  cache: false",
    ].join("\n") + "\n",
  );
  const main = values.main!;
  await using proxy = await startServer("proxy", {
    args: ["run", "-A", V8_FLAGS, main, "--config", config, "--port", "0", "--log-level", "error"],
  });
  const front: ServerProcess | undefined = values.nginx
    ? await startNginx(proxy.url, { upgrades: true }).then((nginx) => {
      if (typeof nginx === "string") throw new Error(nginx);
      return nginx;
    })
    : undefined;
  const port = Number(new URL((front ?? proxy).url).port);
  await (await fetch(`${proxy.url}/health`)).body?.cancel();
  await sleep(300);
  const before = await rss(proxy.pid);
  let peak = before;
  let frontPeak = front ? await rss(front.pid) : 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await rss(proxy.pid).catch(() => 0));
      if (front) frontPeak = Math.max(frontPeak, await rss(front.pid).catch(() => 0));
      await sleep(50);
    }
  })();
  let slowestHealth = 0;
  const health = (async () => {
    while (sampling) {
      const started = performance.now();
      try {
        const response = await fetch(`${proxy.url}/health`, { signal: AbortSignal.timeout(5000) });
        await response.body?.cancel();
      } catch {
        slowestHealth = Infinity;
      }
      slowestHealth = Math.max(slowestHealth, performance.now() - started);
      await sleep(100);
    }
  })();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let answer = "";
  const reader = (async () => {
    const buffer = new Uint8Array(4096);
    try {
      while (answer.length < 4096) {
        const n = await conn.read(buffer);
        if (n === null) break;
        answer += new TextDecoder().decode(buffer.subarray(0, n));
      }
    } catch { /* closed */ }
  })();
  let sent = 0;
  const started = performance.now();
  const deadline = setTimeout(() => conn.close(), SECONDS * 1000);
  try {
    await conn.write(encoder.encode(attack.head));
    while (sent < MIB) {
      for (let done = 0; done < attack.filler.length;) done += await conn.write(attack.filler.subarray(done));
      sent++;
    }
  } catch { /* closed by the deadline or the proxy */ }
  const sendMs = performance.now() - started;
  await sleep(Math.max(0, HOLD_MS + 1500 - (performance.now() - started)));
  clearTimeout(deadline);
  try {
    conn.close();
  } catch { /* closed */ }
  await reader;
  await sleep(1000);
  const after = await rss(proxy.pid);
  sampling = false;
  await Promise.all([sampler, health]);
  console.log(
    `${name.padEnd(26)} sent ${String(sent).padStart(4)} MiB in ${(sendMs / 1000).toFixed(1)} s  RSS ${
      before.toFixed(0)
    } -> peak ${peak.toFixed(0)}, ${after.toFixed(0)} 1 s after close  slowest /health ${
      slowestHealth.toFixed(0)
    } ms  answer: ${answer.split("\r\n")[0] || "(none)"}${
      front ? `  nginx peak ${frontPeak.toFixed(0)} MiB` : ""
    }`,
  );
  await front?.stop();
  await Deno.remove(config);
}

console.log(`load ${(await Deno.readTextFile("/proc/loadavg")).trim()}`);
for (const name of values.case.length ? values.case : Object.keys(CASES)) {
  await runCase(name, CASES[name]);
}
await upstream.shutdown();
