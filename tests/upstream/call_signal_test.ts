/**
 * The abort signal of one upstream call (call_signal.ts): its listeners, the `AbortSignal` it gives fetch, and,
 * through the real proxy with either upstream client, the two things that abort it: the call's timeout and a
 * client that leaves.
 */

import assert from "node:assert/strict";
import { CallSignal } from "../../src/upstream/call_signal.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

test("a call signal calls each listener once, not one removed or added late, and fetch's signal follows it", () => {
  const signal = new CallSignal();
  const heard: string[] = [];
  const first = () => heard.push("first");
  const second = () => heard.push("second");
  signal.addEventListener("abort", first);
  signal.addEventListener("abort", first);
  signal.addEventListener("abort", second);
  signal.removeEventListener("abort", second);
  signal.throwIfAborted();
  const followed = signal.abortSignal();
  assert.equal(followed.aborted, false);
  const reason = new Error("gone");
  signal.abort(reason);
  signal.abort(new Error("again"));
  signal.addEventListener("abort", () => heard.push("late"));
  assert.deepEqual(heard, ["first"]);
  assert.equal(signal.reason, reason);
  assert.throws(() => signal.throwIfAborted(), /gone/);
  assert.equal(followed.aborted, true);
  assert.equal(followed.reason, reason);
  assert.equal(signal.abortSignal().reason, reason, "made after the abort: aborted already");
});

/** An upstream that never answers; counts the requests whose connection the proxy gave up. */
function hangingUpstream() {
  let abandoned = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) =>
      new Promise<Response>((resolve) => {
        request.signal.addEventListener("abort", () => {
          abandoned++;
          resolve(new Response("too late"));
        });
      }),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    abandoned: () => abandoned,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

const body = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] });

const proxyFor = (upstream: string, client: string, timeout: number) =>
  startProxy(groupYaml([endpointYaml(upstream, { extra: `          timeout: ${timeout}` })], [
    `upstream_client: ${client}`,
    "allowed_fails: 10",
  ]));

async function until(done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

for (const client of ["http1", "fetch"]) {
  test(`upstream_client ${client}: a call past its timeout is a 504, and a client that leaves ends the call`, async () => {
    await using upstream = hangingUpstream();
    {
      await using proxy = await proxyFor(upstream.url, client, 0.3);
      const timedOut = await fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body });
      assert.equal(timedOut.status, 504);
      assert.equal((await timedOut.json()).error.type, "timeout");
      await until(() => upstream.abandoned() === 1, 2_000);
      assert.equal(upstream.abandoned(), 1, "the timed-out call's connection was closed");
    }
    await using proxy = await proxyFor(upstream.url, client, 20);
    const leaving = new AbortController();
    const pending = fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      body,
      signal: leaving.signal,
    });
    await until(() => false, 150);
    leaving.abort();
    await assert.rejects(pending);
    await until(() => upstream.abandoned() === 2, 3_000);
    assert.equal(upstream.abandoned(), 2, "the upstream call ended with the client, long before its timeout");
  });
}
