/**
 * Hostile clients at the connection level, against the CLI as a subprocess (its own fd limit, its own RSS): a
 * flood of idle and half-sent connections under `ulimit -n 256`, with the connection cap derived from the fd
 * limit and with a cap set past it (so accept runs out of descriptors); idle keep-alive connections, slow heads
 * and slow bodies closed after their timeouts.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { openFds } from "../_support/process_memory.ts";
import { delay, endpointYaml, groupYaml, type ProxyProcess, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const chat = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] });
const encoder = new TextEncoder();

async function proxyWith(upstream: string, settings: string[], openFileLimit?: number) {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(path, groupYaml([endpointYaml(upstream)], settings));
  const proxy = await startProxyProcess(["--config", path, "--port", "0", "--log-level", "info"], {
    openFileLimit,
  });
  return {
    proxy,
    port: Number(new URL(proxy.url).port),
    [Symbol.asyncDispose]: async () => {
      await proxy[Symbol.asyncDispose]();
      await Deno.remove(path);
    },
  };
}

/** One raw HTTP/1.1 request on `conn`; the status code of the answer (the body is read by content-length). */
async function rawChat(conn: Deno.Conn): Promise<number> {
  await conn.write(encoder.encode(
    `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n` +
      `content-length: ${chat.length}\r\n\r\n${chat}`,
  ));
  let text = "";
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error(`connection closed mid-answer: ${text}`);
    text += new TextDecoder().decode(buffer.subarray(0, n));
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) continue;
    const length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
    if (text.length >= end + 4 + length) return Number(text.slice(9, 12));
  }
}

/**
 * Opens up to `count` connections at once (each given up after 3 s: on a loaded machine this process may not see
 * its connects complete within 1 s); half of them send half a request head.
 */
async function attack(port: number, count: number): Promise<{ conns: Deno.Conn[]; refused: number }> {
  const conns: Deno.Conn[] = [];
  let refused = 0;
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port, signal: AbortSignal.timeout(3000) });
      conns.push(conn);
      if (i % 2) await conn.write(encoder.encode("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"));
    } catch {
      refused++;
    }
  }));
  return { conns, refused };
}

function alive(proxy: ProxyProcess): Promise<boolean> {
  return Promise.race([proxy.child.status.then(() => false), delay(0).then(() => true)]);
}

for (const variant of ["derived", "past the fd limit"] as const) {
  test(`ulimit -n 256, 2,000 attacking connections (max_connections ${variant}): stays up, serves`, {
    timeout: 40_000,
  }, async () => {
    await using sim = await SimUpstream.start({ quiet: true });
    const settings = variant === "derived" ? [] : ["max_connections: 5000"];
    await using running = await proxyWith(sim.url, settings, 256);
    const { proxy, port } = running;
    // A client connected before the attack, kept alive through it (its upstream connection is pooled by now).
    const client = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      assert.equal(await rawChat(client), 200);
      const { conns, refused } = await attack(port, 2000);
      const fds = await openFds(proxy.child.pid);
      assert.equal(await rawChat(client), 200, "a connection already open keeps being served");
      await delay(200);
      assert.ok(await alive(proxy), `the proxy exited:\n${proxy.output()}`);
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed by the proxy */ }
      }
      // A fresh client's one request right after the flood ends (no retry): served within `bound`. At the cap it
      // waits for a place while the proxy sees the attackers' closes land (README, "Connections"). Past the fd
      // limit the kernel's accept queue was full while descriptors were out, so the fresh client's connect may be
      // dropped once and resent by Linux 1 s later (seen as ~1.02-1.04 s in about one run in four).
      const bound = variant === "derived" ? 1000 : 2500;
      const closedAt = performance.now();
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        body: chat,
        signal: AbortSignal.timeout(bound),
      });
      const took = performance.now() - closedAt;
      await response.body?.cancel();
      const logs = proxy.output();
      const capLines = logs.split("\n").filter((line) => line.includes("max_connections reached")).length;
      const fdLines = logs.split("\n").filter((line) => line.includes("out of file descriptors")).length;
      console.log(
        `${variant}: ${conns.length} attackers connected, ${refused} gave up; proxy fds ${fds}; ` +
          `fresh chat ${response.status} ${Math.round(took)} ms after they closed; ` +
          `log lines: cap ${capLines}, fd ${fdLines}`,
      );
      assert.equal(response.status, 200);
      assert.ok(conns.length > 96, "the attack filled the proxy's connections");
      assert.ok(fds <= 256);
      if (variant === "derived") {
        assert.match(logs, /"max_connections":96/);
        assert.ok(capLines >= 1 && capLines <= 4, `logged once per interval, got ${capLines}`);
      } else {
        assert.ok(fdLines >= 1 && fdLines <= 4, `logged once per interval, got ${fdLines}`);
      }
      assert.ok(!/Uncaught|panicked/.test(logs), logs);
    } finally {
      client.close();
    }
  });
}

test("idle keep-alive connections, slow heads and slow bodies are closed after their timeouts", {
  timeout: 30_000,
}, async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using running = await proxyWith(sim.url, [
    "keepalive_timeout: 0.5",
    "header_timeout: 0.5",
    "body_timeout: 0.5",
  ]);
  const { port } = running;
  const closedAfter = async (conn: Deno.Conn): Promise<number> => {
    const started = performance.now();
    const buffer = new Uint8Array(4096);
    let text = "";
    for (;;) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    conn.close();
    assert.ok(!text.includes("HTTP/1.1 200"), text);
    return performance.now() - started;
  };
  // Idle after one answer.
  const idle = await Deno.connect({ hostname: "127.0.0.1", port });
  assert.equal(await rawChat(idle), 200);
  // Half a head, never finished.
  const slowHead = await Deno.connect({ hostname: "127.0.0.1", port });
  await slowHead.write(encoder.encode("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"));
  // A whole head, then half the body.
  const slowBody = await Deno.connect({ hostname: "127.0.0.1", port });
  await slowBody.write(encoder.encode(
    `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: ${chat.length}\r\n\r\n${
      chat.slice(0, 10)
    }`,
  ));
  const [idleMs, headMs] = await Promise.all([closedAfter(idle), closedAfter(slowHead)]);
  const body = new Uint8Array(4096);
  const n = await slowBody.read(body);
  slowBody.close();
  const answer = new TextDecoder().decode(body.subarray(0, n ?? 0));
  console.log(`closed after: idle keep-alive ${Math.round(idleMs)} ms, slow head ${Math.round(headMs)} ms`);
  for (const ms of [idleMs, headMs]) assert.ok(ms >= 300 && ms < 3000, `closed after ${ms} ms`);
  assert.match(answer, /^HTTP\/1\.1 408/);
  assert.match(answer, /"code":"request_timeout"/);
});

test("at max_connections a new connection waits up to 1 s for a place: served when one frees, else closed", {
  timeout: 20_000,
}, async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using running = await proxyWith(sim.url, ["max_connections: 2"]);
  const { port } = running;
  const held = [
    await Deno.connect({ hostname: "127.0.0.1", port }),
    await Deno.connect({ hostname: "127.0.0.1", port }),
  ];
  const extra: Deno.Conn[] = [];
  try {
    for (const conn of held) assert.equal(await rawChat(conn), 200);
    // A third client: the proxy is at its cap, so its request waits; a held connection closes 300 ms later.
    const third = await Deno.connect({ hostname: "127.0.0.1", port });
    extra.push(third);
    const started = performance.now();
    const answer = rawChat(third).then(String, (error) => String(error));
    await delay(300);
    held.shift()!.close();
    assert.equal(await answer, "200", "served once a place freed");
    const servedAfter = performance.now() - started;
    // A fourth: nothing frees up, so its connection is closed unread after its wait.
    const fourth = await Deno.connect({ hostname: "127.0.0.1", port });
    extra.push(fourth);
    const refusedAt = performance.now();
    const refused = await rawChat(fourth).then((status) => `answered ${status}`, (error) => String(error));
    const refusedAfter = performance.now() - refusedAt;
    console.log(
      `third served after ${Math.round(servedAfter)} ms; fourth: ${refused} after ${
        Math.round(refusedAfter)
      } ms`,
    );
    assert.ok(servedAfter >= 300 && servedAfter < 1000, `third served after ${servedAfter} ms`);
    assert.match(refused, /closed mid-answer|reset|broken pipe/i);
    assert.ok(refusedAfter >= 900 && refusedAfter < 3000, `fourth closed after ${refusedAfter} ms`);
  } finally {
    for (const conn of [...held, ...extra]) {
      try {
        conn.close();
      } catch { /* closed already */ }
    }
  }
});
