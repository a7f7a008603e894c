/**
 * `header_timeout` and `keepalive_timeout` never close a connection before their time. The server's sweep runs every
 * quarter of the shorter timeout (at most every second) and counted a connection's age from the sweep before it was
 * accepted, so a connection could be closed up to a sweep early: with the 10 s default a head sent after 9.1 s was
 * cut, with 1 s one sent after 760 ms. Under a CPU-heavy load (big bodies parsed) heads sent well before the timeout
 * were never cut (240 of 240, header_timeout 1 s, heads at 300-680 ms): a busy loop only makes the sweep later.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

/** Milliseconds from `since` until the proxy closes `conn`; what it sent is returned too. */
async function closedAfter(conn: Deno.Conn, since: number): Promise<{ ms: number; text: string }> {
  const buffer = new Uint8Array(4096);
  let text = "";
  for (let reads = 0; reads < 100; reads++) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  const ms = performance.now() - since;
  conn.close();
  return { ms, text };
}

test("no connection is closed before header_timeout or keepalive_timeout", { timeout: 30_000 }, async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(
    path,
    groupYaml([endpointYaml(sim.url)], ["header_timeout: 1", "keepalive_timeout: 1"]),
  );
  await using proxy = await startProxyProcess(["--config", path, "--port", "0", "--log-level", "error"]);
  await Deno.remove(path);
  const port = Number(new URL(proxy.url).port);
  // Eight slow heads and eight idle keep-alive connections, opened 40 ms apart: they span more than one sweep
  // (250 ms here), so some are accepted just after a sweep, the ones that were cut early.
  const heads: Promise<{ ms: number; text: string }>[] = [];
  const idle: Promise<{ ms: number; text: string }>[] = [];
  for (let i = 0; i < 8; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const since = performance.now();
    await conn.write(encoder.encode("GET /health HTTP/1.1\r\nhost: x\r\n"));
    heads.push(closedAfter(conn, since));
    const kept = await Deno.connect({ hostname: "127.0.0.1", port });
    await kept.write(encoder.encode("GET /health HTTP/1.1\r\nhost: x\r\n\r\n"));
    const answer = new Uint8Array(4096);
    const n = await kept.read(answer);
    const keptSince = performance.now();
    assert.match(new TextDecoder().decode(answer.subarray(0, n ?? 0)), /^HTTP\/1\.1 200/);
    idle.push(closedAfter(kept, keptSince));
    await delay(40);
  }
  const cut = (await Promise.all(heads)).map(({ ms }) => Math.round(ms));
  const ended = await Promise.all(idle);
  const idleMs = ended.map(({ ms }) => Math.round(ms));
  console.log(`closed after (ms): slow heads ${cut.join(" ")}; idle keep-alive ${idleMs.join(" ")}`);
  for (const ms of cut) assert.ok(ms >= 990 && ms < 3000, `a slow head closed after ${ms} ms (timeout 1000)`);
  for (const ms of idleMs) {
    assert.ok(ms >= 990 && ms < 3000, `an idle connection closed after ${ms} ms (timeout 1000)`);
  }
  for (const { text } of ended) assert.equal(text, "", "nothing more was sent on the idle connection");
});
