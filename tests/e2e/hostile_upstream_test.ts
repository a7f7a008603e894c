/**
 * Upstreams that misbehave on purpose: an endless answer, a gzip bomb, a SYN that is never answered, and one that
 * closes idle keep-alive connections at random. The proxy's memory stays bounded (its peak RSS is read from
 * /proc), connects fail over fast, and a closed keep-alive connection is never a client error nor a cooldown.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { peakRssMib } from "../_support/process_memory.ts";
import { delay, endpointYaml, groupYaml, startProxy, startProxyProcess } from "../_support/proxy.ts";
import { rawServer } from "../_support/raw_server.ts";
import { test } from "../_support/test.ts";

const chat = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] });
const encoder = new TextEncoder();
const MiB = 1024 * 1024;

/** A proxy subprocess (so its own RSS can be read) in front of `base`, with the default limits. */
async function proxyProcess(base: string, settings: string[] = []) {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(path, groupYaml([endpointYaml(base)], ["num_retries: 0", ...settings]));
  const proxy = await startProxyProcess(["--config", path, "--port", "0", "--log-level", "error"]);
  return {
    proxy,
    [Symbol.asyncDispose]: async () => {
      await proxy[Symbol.asyncDispose]();
      await Deno.remove(path);
    },
  };
}

/** A raw HTTP server: `answer` writes whatever it likes on a connection once its first request has arrived. */
const rawUpstream = (answer: (conn: Deno.Conn) => Promise<void>) =>
  rawServer(async (conn, read) => {
    if (await read()) await answer(conn);
  });

test("an upstream answer of 10 GB: 502 at max_response_bytes, connection dropped, RSS bounded", {
  timeout: 30_000,
}, async () => {
  let sent = 0;
  await using upstream = rawUpstream(async (conn) => {
    // Announced as chunked, endless: the proxy must stop reading, not the upstream stop writing.
    await conn.write(encoder.encode(
      "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" +
        "transfer-encoding: chunked\r\n\r\n",
    ));
    const chunk = encoder.encode(`100000\r\n${"x".repeat(MiB)}\r\n`);
    while (sent < 10 * 1024 * MiB) {
      for (let at = 0; at < chunk.length;) at += await conn.write(chunk.subarray(at));
      sent += chunk.length;
    }
  });
  await using running = await proxyProcess(upstream.url);
  const { proxy } = running;
  const started = performance.now();
  const response = await fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body: chat });
  const { error } = await response.json();
  assert.equal(response.status, 502);
  assert.equal(error.code, "upstream_response_too_large");
  assert.match(
    error.message,
    /larger than the limit of 67108864 bytes \(general_settings\.max_response_bytes\)/,
  );
  await delay(100);
  const peak = await peakRssMib(proxy.child.pid);
  console.log(
    `10 GB answer: 502 after ${Math.round(performance.now() - started)} ms; upstream wrote ` +
      `${Math.round(sent / MiB)} MiB before the proxy dropped it; proxy peak RSS ${Math.round(peak)} MiB`,
  );
  assert.ok(sent < 10 * 1024 * MiB, "the upstream was cut off");
  assert.ok(peak < 400, `peak RSS ${peak} MiB`);
  // Still serving (its only endpoint now cools down after the failure).
  const health = await fetch(`${proxy.url}/health`);
  assert.equal((await health.json()).status, "unavailable");
});

/** A gzip body that inflates to `size` zero bytes: one fixed-Huffman deflate block of 258-byte repeats. */
function gzipBomb(size: number): Uint8Array {
  const repeats = Math.floor((size - 1) / 258);
  const out = new Uint8Array(10 + Math.ceil((3 + 8 + repeats * 13 + 7) / 8) + 8 + 1);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
  let at = 10;
  let bits = 0;
  let count = 0;
  const put = (value: number, length: number) => { // LSB first
    bits |= value << count;
    count += length;
    while (count >= 8) {
      out[at++] = bits & 0xff;
      bits >>>= 8;
      count -= 8;
    }
  };
  /** A Huffman code: most significant bit first. */
  const code = (value: number, length: number) => {
    for (let i = length - 1; i >= 0; i--) put((value >> i) & 1, 1);
  };
  put(1, 1); // final block
  put(1, 2); // fixed Huffman
  code(0x30, 8); // literal 0
  for (let i = 0; i < repeats; i++) {
    code(0xc5, 8); // length 258
    code(0, 5); // distance 1
  }
  code(0, 7); // end of block
  if (count > 0) out[at++] = bits & 0xff;
  return out.subarray(0, at); // no trailer: the proxy must stop long before it would check one
}

test("an upstream gzip bomb (13 MB inflating to 2 GiB): 502 at max_response_bytes, RSS bounded", {
  timeout: 30_000,
}, async () => {
  const bomb = gzipBomb(2 * 1024 * MiB);
  await using upstream = rawUpstream(async (conn) => {
    await conn.write(encoder.encode(
      "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" +
        `content-encoding: gzip\r\ncontent-length: ${bomb.length}\r\n\r\n`,
    ));
    for (let at = 0; at < bomb.length;) at += await conn.write(bomb.subarray(at, at + 64 * 1024));
  });
  await using running = await proxyProcess(upstream.url);
  const { proxy } = running;
  const response = await fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body: chat });
  const { error } = await response.json();
  assert.equal(response.status, 502);
  assert.equal(error.code, "upstream_response_too_large");
  const peak = await peakRssMib(proxy.child.pid);
  console.log(`gzip bomb of ${(bomb.length / MiB).toFixed(1)} MiB: proxy peak RSS ${Math.round(peak)} MiB`);
  assert.ok(peak < 400, `peak RSS ${peak} MiB`);
});

test("a blackholed upstream (SYN never answered): connect_timeout fails over in well under the deadline", {
  timeout: 20_000,
}, async () => {
  // A listener with a backlog of one, filled: the kernel drops further SYNs, as a blackhole would.
  const hole = Deno.listen({ hostname: "127.0.0.1", port: 0, tcpBacklog: 0 } as Deno.TcpListenOptions);
  const filler = await Deno.connect({ hostname: "127.0.0.1", port: hole.addr.port });
  try {
    await failsOverAfterConnectTimeout(`http://127.0.0.1:${hole.addr.port}`, 15, 5_000);
  } finally {
    filler.close();
    hole.close();
  }
});

test("a TLS upstream that takes the connection but never shakes hands: connect_timeout fails over too", {
  timeout: 20_000,
}, async () => {
  // Accepts and says nothing: the TCP connection opens, the TLS handshake never ends. Before, the http1 client
  // shook hands lazily, at the request's first write, so the attempt waited for the endpoint's whole timeout.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  try {
    await failsOverAfterConnectTimeout(`https://127.0.0.1:${silent.addr.port}`, 8, 4_000);
  } finally {
    silent.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
  }
});

/**
 * A keep-alive upstream that closes each connection after a random 0-50 ms without a request, without reading
 * what may have arrived: the race every pooled client meets.
 */
function closingUpstream() {
  let served = 0;
  const upstream = rawServer(async (conn, read) => {
    const body = JSON.stringify({
      id: "c",
      object: "chat.completion",
      choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
    });
    const answer = encoder.encode(
      `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
    for (;;) {
      if (!await read()) return;
      for (let at = 0; at < answer.length;) at += await conn.write(answer.subarray(at));
      served++;
      // Idle for a random 0-50 ms: then closed, whatever is on its way.
      const idle = Math.random() * 50;
      const next = await Promise.race([read.peek(), delay(idle).then(() => "idle" as const)]);
      if (next === "idle" || next === false) return;
    }
  });
  return { ...upstream, served: () => served };
}

const LOAD_SECONDS = Number(Deno.env.get("HARDENING_LOAD_SECONDS") ?? 4);

test("an upstream closing idle keep-alive connections at random: no client error, no failure, no cooldown", {
  timeout: 30_000 + LOAD_SECONDS * 1000,
}, async () => {
  await using upstream = closingUpstream();
  await using proxy = await startProxy(
    groupYaml([endpointYaml(upstream.url, { name: "flaky" })], ["allowed_fails: 1", "num_retries: 0"]),
    { logLevel: "warn" },
  );
  const until = performance.now() + LOAD_SECONDS * 1000;
  const statuses = new Map<number, number>();
  const worker = async (pause: number) => {
    while (performance.now() < until) {
      const response = await fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body: chat });
      await response.body?.cancel();
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      // Pauses around the upstream's idle limit: some connections are taken just as it closes them.
      await delay(Math.random() * pause);
    }
  };
  await Promise.all([0, 10, 25, 40, 50, 60].map(worker));
  const stats = await (await fetch(`${proxy.url}/stats`)).json();
  const endpoint = stats.endpoints.find((e: { id: string }) => e.id === "flaky");
  console.log(
    `closing upstream, ${LOAD_SECONDS}s: statuses ${JSON.stringify([...statuses])}, ` +
      `upstream served ${upstream.served()}, failures ${endpoint.failures}, state ${endpoint.state}`,
  );
  assert.deepEqual([...statuses.keys()], [200]);
  assert.equal(endpoint.failures, 0);
  assert.equal(endpoint.state, "available");
});

/**
 * A chat through a group whose heavier endpoint at `url` never opens (connect_timeout 0.5 s, http_timeout
 * `httpTimeoutS`): answered by the other endpoint, on the second attempt, after the connect timeout and within
 * `withinMs`.
 */
async function failsOverAfterConnectTimeout(
  url: string,
  httpTimeoutS: number,
  withinMs: number,
): Promise<void> {
  await using sim = await SimUpstream.start({ quiet: true });
  const yaml = groupYaml([
    endpointYaml(url, { name: "unopened", weight: 1000 }),
    endpointYaml(sim.url, { name: "good", weight: 1 }),
  ], [`http_timeout: ${httpTimeoutS}`, "connect_timeout: 0.5"]);
  await using proxy = await startProxy(yaml);
  const started = performance.now();
  const response = await fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body: chat });
  const elapsed = performance.now() - started;
  await response.body?.cancel();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("x-llmproxy-endpoint"), "good");
  assert.equal(response.headers.get("x-llmproxy-attempts"), "2");
  assert.ok(elapsed > 450 && elapsed < withinMs, `answered after ${elapsed} ms`);
}
