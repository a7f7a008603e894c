/**
 * A body made to be dear to parse does not stall everyone else. 9.3 MB of 500,000 small members (within the
 * 10 MiB limit) took ~0.9 s to parse, ~0.45 s to check and ~0.8 s to key, each one uninterrupted stretch of the
 * event loop, and `/health` waited up to 4.5 s (session 17). Now a body that could hold more than
 * `max_body_items` objects, arrays and members is scanned in pieces first and refused with a 400 before it is
 * parsed. While two such bodies at a time are sent for six rounds, `/health` and a small chat from another
 * client keep being answered within `BOUND_MS`, and the proxy's main thread spends little CPU during any one of
 * them (the figure that does not depend on the machine's load: see big_bodies_loop_test.ts).
 */

import assert from "node:assert/strict";
import { delay, endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { mainThread, schedMs, simProcess } from "../_support/sim_process.ts";
import { test } from "../_support/test.ts";

/**
 * The slowest `/health` or small chat allowed while hostile bodies arrive, in wall time on this loaded 2-core
 * machine. Six runs with 3 busy loops beside (load 8-10): 57-297 ms for /health, 41-346 ms for a chat; with the
 * scan turned off, two hostile bodies alone: 2.3-2.6 s and 5.8-15.4 s. Under the whole suite a poll's wall time
 * is mostly waiting for a core (big_bodies_loop_test saw a 1,233 ms poll that held 63 ms of the proxy's CPU), so
 * the bound leaves room for that; the CPU bound below is the sharp one.
 */
const BOUND_MS = 2_000;
/** The most CPU the proxy's main thread may spend during one of them: 25-78 ms seen; 679-1,617 ms without the scan. */
const CPU_BOUND_MS = 150;

/** A chat body whose `metadata_x` has `members` small members. */
function hostileChat(members: number): Uint8Array<ArrayBuffer> {
  const parts = Array.from({ length: members }, (_, i) => `"key${i}":${i}`);
  return new TextEncoder().encode(
    `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"metadata_x":{${parts.join(",")}}}`,
  );
}

interface Answer {
  readonly what: string;
  readonly ms: number;
  /** The proxy's main thread meanwhile, on a core. */
  readonly cpu: number;
}

/** Asks `/health`, then a small chat, every 10 ms until `done` settles. */
async function pollBoth(url: string, pid: number, done: Promise<unknown>): Promise<Answer[]> {
  const answers: Answer[] = [];
  let finished = false;
  done.finally(() => finished = true).catch(() => {});
  const timed = async (what: string, ask: () => Promise<Response>) => {
    const before = schedMs(mainThread(pid)).cpu;
    const started = performance.now();
    const response = await ask();
    const text = await response.text();
    const ms = performance.now() - started;
    assert.equal(response.status, 200, `${what}: ${text.slice(0, 200)}`);
    answers.push({ what, ms, cpu: schedMs(mainThread(pid)).cpu - before });
  };
  const stop = Date.now() + 60_000;
  for (let i = 0; !finished && Date.now() < stop; i++) {
    await timed("/health", () => fetch(`${url}/health`));
    await timed("small chat", () =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: `hello ${i}` }] }),
      }));
    await delay(10);
  }
  return answers;
}

test("500,000 small members in 9.3 MB: a 400 before the parse; /health and a small chat answered meanwhile", {
  timeout: 90_000,
}, async () => {
  await using sim = await simProcess();
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(path, groupYaml([endpointYaml(sim.url, { name: "a" })], ["cache: true"]));
    await using proxy = await startProxyProcess(["--config", path, "--port", "0", "--log-level", "error"]);
    const hostile = hostileChat(500_000);
    const warm = await fetch(`${proxy.url}/health`);
    await warm.body?.cancel();
    const refusals: string[] = [];
    const sending = (async () => {
      for (let round = 0; round < 6; round++) {
        await Promise.all([0, 1].map(async () => {
          const response = await fetch(`${proxy.url}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: hostile,
          });
          const text = await response.text();
          assert.equal(response.status, 400, text.slice(0, 300));
          const { error } = JSON.parse(text);
          assert.equal(error.code, "request_too_complex");
          refusals.push(error.message);
        }));
      }
    })();
    const started = performance.now();
    const answers = await pollBoth(proxy.url, proxy.child.pid, sending);
    await sending;
    const total = performance.now() - started;
    assert.match(refusals[0], /more than 100000 JSON objects, arrays and object members/);
    const worst = (what: string) =>
      answers.filter((a) => a.what === what).reduce((a, b) => b.ms > a.ms ? b : a, { what, ms: 0, cpu: 0 });
    const busiest = answers.reduce((a, b) => b.cpu > a.cpu ? b : a, answers[0]);
    const health = worst("/health");
    const chat = worst("small chat");
    const ms = (value: number) => value.toFixed(0);
    console.log(
      `twelve hostile bodies in ${ms(total)} ms, ${
        answers.length / 2
      } rounds of /health + small chat: slowest ` +
        `/health ${ms(health.ms)} ms, slowest chat ${ms(chat.ms)} ms, most proxy CPU in one ${
          ms(busiest.cpu)
        } ms`,
    );
    assert.ok(answers.length >= 4, `only ${answers.length} answers`);
    assert.ok(health.ms < BOUND_MS, `/health took ${ms(health.ms)} ms`);
    assert.ok(chat.ms < BOUND_MS, `a small chat took ${ms(chat.ms)} ms`);
    assert.ok(busiest.cpu < CPU_BOUND_MS, `the proxy spent ${ms(busiest.cpu)} ms of CPU during one answer`);
  } finally {
    await Deno.remove(path);
  }
});
