import assert from "node:assert/strict";
import { type GcOptions, settleAfterStart } from "../../src/serve/settle.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

/** A server's counts as settle reads them; `request()` is one that came and was answered at once. */
function traffic() {
  const counts = { requests: 0, inflight: 0 };
  return { counts, request: () => void counts.requests++ };
}

/** A recording `gc`: when it ran (ms since the test began) and with which options. */
function recorder() {
  const started = performance.now();
  const calls: { atMs: number; options?: GcOptions }[] = [];
  return {
    calls,
    gc: (options?: GcOptions) => void calls.push({ atMs: performance.now() - started, options }),
  };
}

test("collects once quiet after start, again after the first requests, at most `rounds` times", async () => {
  const { calls, gc } = recorder();
  const { counts, request } = traffic();
  using settling = settleAfterStart(counts, { gc, quietMs: 40, rounds: 2 });
  await delay(150);
  assert.equal(calls.length, 1, "one collection after start, none more while nothing happens");
  assert.deepEqual(calls[0].options, { type: "major", execution: "sync", flavor: "last-resort" });
  request();
  await delay(150);
  assert.equal(calls.length, 2, "one more once the request has come and gone");
  request();
  await delay(150);
  assert.equal(calls.length, 2, "rounds: 2");
  assert.equal(settling.collections, 2);
});

test("no collection while requests keep coming; one once they stop", async () => {
  const { calls, gc } = recorder();
  const { counts, request } = traffic();
  using _settling = settleAfterStart(counts, { gc, quietMs: 60 });
  await delay(120);
  assert.equal(calls.length, 1);
  const busyUntil = performance.now() + 400;
  while (performance.now() < busyUntil) {
    request();
    await delay(10);
  }
  assert.equal(calls.length, 1, "busy: no collection");
  await delay(200);
  assert.equal(calls.length, 2);
});

test("none once the server has served more than maxRequests: its heap is the traffic's, not start-up's", async () => {
  const { calls, gc } = recorder();
  const { counts } = traffic();
  using settling = settleAfterStart(counts, { gc, quietMs: 30, rounds: 3, maxRequests: 100 });
  await delay(80);
  assert.equal(calls.length, 1, "the collection after start");
  counts.requests += 100;
  await delay(100);
  assert.equal(calls.length, 2, "100 requests served: still the first requests");
  counts.requests += 1;
  await delay(100);
  assert.equal(calls.length, 2, "101: no third collection, though quiet and a round is left");
  assert.equal(settling.collections, 2);
});

test("nothing after the window, nor after dispose, nor without gc()", async () => {
  const late = recorder();
  {
    const { counts, request } = traffic();
    using _settling = settleAfterStart(counts, { gc: late.gc, quietMs: 30, windowMs: 50 });
    await delay(100);
    request();
    await delay(100);
  }
  assert.equal(late.calls.length, 1, "only the one inside the first 50 ms");
  const stopped = recorder();
  const settling = settleAfterStart(traffic().counts, { gc: stopped.gc, quietMs: 30 });
  settling[Symbol.dispose]();
  await delay(100);
  assert.equal(stopped.calls.length, 0);
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, "undefined", "the test runner has no --expose-gc");
  using plain = settleAfterStart(traffic().counts, { quietMs: 10 });
  await delay(50);
  assert.equal(plain.collections, 0);
});

test(
  "the proxy, run with the shipped V8 flags, collects its start-up garbage",
  { timeout: 20_000 },
  async () => {
    await using sim = await SimUpstream.start({ name: "a", quiet: true });
    const path = await Deno.makeTempFile({ suffix: ".yaml" });
    try {
      await Deno.writeTextFile(path, groupYaml([endpointYaml(sim.url, { name: "a" })]));
      await using proxy = await startProxyProcess(["--config", path, "--port", "0", "--log-level", "debug"]);
      const answer = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(answer.status, 200);
      await answer.body?.cancel();
      // One collection after start (unless the request came first), one after the request.
      const deadline = Date.now() + 5000;
      const collected = () =>
        proxy.output().split("\n").filter((line) => line.includes("start-up garbage collected")).map((line) =>
          JSON.parse(line)
        );
      while (!collected().some((line) => line.requests === 1) && Date.now() < deadline) await delay(50);
      const after = collected().find((line) => line.requests === 1);
      assert.ok(after, proxy.output());
      assert.ok(after.heap_used_after_mib < after.heap_used_mib, JSON.stringify(after));
    } finally {
      await Deno.remove(path);
    }
  },
);
