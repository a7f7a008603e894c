/**
 * The CLI proxy on a runtime without the internals it takes fast paths through (a preload hides them:
 * tests/fixtures/hide_runtime_internals.ts): each fallback serves the same answers. Streams with their headers and
 * every event, JSON, a kept-alive upstream connection used again after it was parked (its watch read made to count
 * again: the process must not exit under it nor hang on it), a client leaving mid-stream, and a clean shutdown.
 */

import assert from "node:assert/strict";
import { V8_FLAGS } from "../../scripts/compile.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const PRELOAD = new URL("../fixtures/hide_runtime_internals.ts", import.meta.url).pathname;

const ask = (url: string, stream: boolean, signal?: AbortSignal) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "gpt-test",
      stream,
      messages: [{ role: "user", content: `hi ${stream}` }],
    }),
    signal,
  });

async function within(ms: number, check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await delay(20);
  return check();
}

test("CLI proxy without the runtime's internals: streams, JSON, reuse, a client leaving, shutdown", {
  timeout: 60_000,
}, async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true, chunks: 8 });
  const dir = await Deno.makeTempDir({ prefix: "llmproxy-fallback-" });
  try {
    const path = `${dir}/llmproxy.yaml`;
    await Deno.writeTextFile(path, groupYaml([endpointYaml(sim.url, { name: "a" })]));
    await using proxy = await startProxyProcess(["--config", path, "--port", "0"], {
      runFlags: ["--allow-all", V8_FLAGS, "--preload", PRELOAD],
    });
    assert.match(proxy.output(), /runtime internals hidden/);

    for (let round = 0; round < 3; round++) {
      const response = await ask(proxy.url, true);
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
      assert.equal(response.headers.get("cache-control"), "no-cache");
      assert.ok(response.headers.get("x-request-id"), "x-request-id");
      const text = await response.text();
      const events = text.split("\n\n").filter((event) => event !== "");
      assert.ok(events.length >= 9, text);
      for (const event of events.slice(0, -1)) JSON.parse(event.replace(/^data: /, ""));
      assert.equal(events.at(-1), "data: [DONE]");
      // A pause: the upstream connection is parked between rounds, then taken again.
      await delay(150);
      const json = await ask(proxy.url, false);
      assert.equal(json.status, 200);
      assert.ok((await json.json()).choices[0].message.content, "JSON answer");
    }

    sim.chunkDelayMs = 50;
    sim.chunks = 60;
    const leaving = new AbortController();
    const response = await ask(proxy.url, true, leaving.signal);
    const reader = response.body!.getReader();
    await reader.read();
    leaving.abort();
    await reader.cancel().catch(() => {});
    assert.ok(
      await within(3_000, () => sim.cancelledStreams === 1),
      "the left stream was not cancelled upstream",
    );

    assert.equal(await proxy.stop("SIGTERM"), 0, proxy.output());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
