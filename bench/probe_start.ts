/**
 * The bare pass-through (bench/passthrough.ts) after using, at its start, one or more things the proxy uses at
 * its start: which pages of the deno binary each one makes resident (bench/binary_pages.ts `--probe`).
 *
 *   deno run -A bench/probe_start.ts UPSTREAM_BASE_URL NAME[,NAME...]
 */

import { servePassthrough } from "./passthrough.ts";

const [upstream, names = "none"] = Deno.args;
if (!upstream) throw new Error("usage: probe_start.ts UPSTREAM_BASE_URL NAME[,NAME...]");

/** What each probe keeps alive, so nothing it made is collected before the reading. */
const kept: unknown[] = [];
const keep = (...values: unknown[]) => void kept.push(...values);

const PROBES: Readonly<Record<string, () => unknown>> = {
  none: () => {},
  "node:net": async () => keep(await import("node:net")),
  "node:util": async () => keep(await import("node:util")),
  "node:buffer": async () => keep(await import("node:buffer")),
  "text-codec": () =>
    keep(new TextEncoder().encode("héllo"), new TextDecoder().decode(new Uint8Array([104, 105]))),
  "random-uuid": () => keep(crypto.randomUUID()),
  "get-random-values": () => keep(crypto.getRandomValues(new Uint8Array(16))),
  "subtle-digest": async () => keep(await crypto.subtle.digest("SHA-256", new Uint8Array(10))),
  "subtle-hmac": async () =>
    keep(
      await crypto.subtle.importKey("raw", new Uint8Array(32), { name: "HMAC", hash: "SHA-256" }, false, [
        "sign",
      ]),
    ),
  intl: () => keep(new Intl.NumberFormat("en-US").format(12345.6)),
  "date-string": () => keep(new Date().toString()),
  "date-iso": () => keep(new Date().toISOString()),
  performance: () => keep(performance.now(), performance.timeOrigin),
  "signal-listener": () => Deno.addSignalListener("SIGHUP", () => {}),
  "set-interval": () => keep(setInterval(() => {}, 60_000)),
  webassembly: () => keep(new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]))),
  "read-text-file": async () => keep(await Deno.readTextFile(new URL("../deno.json", import.meta.url))),
  "structured-clone": () => keep(structuredClone({ a: [1, 2, { b: "c" }] })),
  url: () => keep(new URL("http://127.0.0.1:1/x?y=1").searchParams.get("y")),
  env: () => keep(Deno.env.get("HOME"), Deno.env.toObject()),
  regexp: () => {
    const line = /^([a-z]+)\s*:\s*(.*)$/u;
    for (let i = 0; i < 50; i++) keep(line.exec(`key: value ${i}`), /\d+(?:\.\d+)?/.test(`x${i}`));
  },
  listen: () => keep(Deno.listen({ hostname: "127.0.0.1", port: 0 })),
  connect: async () =>
    (await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(upstream).port) })).close(),
  "abort-signals": () => keep(AbortSignal.any([new AbortController().signal]), AbortSignal.timeout(100_000)),
  streams: () => keep(new TransformStream(), new ReadableStream()),
  json: () => keep(JSON.parse(JSON.stringify({ a: 1, b: [1, 2] }))),
  "console-object": () => console.error({ a: 1, b: "x" }),
  "json-fraction": () =>
    keep(JSON.stringify({ latency_ms: Math.round(performance.now() * 100) / 100 + 0.01 })),
  "stderr-write": () =>
    Deno.stderr.writeSync(new TextEncoder().encode(JSON.stringify({ level: "info" }) + "\n")),
  "set-timeout": () => keep(setTimeout(() => {}, 60_000)),
};

for (const name of names.split(",")) {
  const probe = PROBES[name];
  if (!probe) throw new Error(`unknown probe ${name}; known: ${Object.keys(PROBES).join(", ")}`);
  await probe();
}

// From here on, the bare pass-through itself.
servePassthrough(upstream);
