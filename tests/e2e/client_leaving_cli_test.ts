/**
 * A client that leaves cancels the upstream call through the CLI proxy (its own server, serve/server.ts), with
 * Deno's legacy abort behaviour and with `--unstable-no-legacy-abort` (deno.json's and the binary's): the
 * generation routes learn of it from the runtime's side of the served request (http/served_request.ts), not from
 * `request.signal`, so both ways are checked here, streams and JSON, with the cache's coalescing on and off.
 */

import assert from "node:assert/strict";
import { V8_FLAGS } from "../../scripts/compile.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const root = new URL("../../", import.meta.url).pathname;
const dir = await Deno.makeTempDir({ prefix: "llmproxy-leaving-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

/** deno.json's imports without its `unstable` list: the runtime's legacy abort behaviour. */
async function legacyConfig(): Promise<string> {
  const project = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
  const path = `${dir}/deno.legacy.json`;
  await Deno.writeTextFile(path, JSON.stringify({ imports: project.imports, nodeModulesDir: "none" }));
  return path;
}

/** Runs `check` until it is true or `ms` pass; returns its last answer. */
async function within(ms: number, check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await delay(20);
  return check();
}

/** An upstream that holds every call until the proxy gives it up; counts the calls and the ones given up. */
function holdingUpstream() {
  const seen = { calls: 0, cancelled: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    seen.calls++;
    await request.text();
    await new Promise<void>((resolve) => request.signal.addEventListener("abort", () => resolve()));
    seen.cancelled++;
    return new Response(null, { status: 499 });
  });
  return {
    seen,
    url: `http://127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A chat request to `model`; `no-cache` bypasses the cache (no coalescing), else it may join a flight. */
const ask = (url: string, model: string, stream: boolean, signal: AbortSignal, noCache: boolean) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(noCache ? { "cache-control": "no-cache" } : {}) },
    body: JSON.stringify({
      model,
      stream,
      messages: [{ role: "user", content: `leave ${stream} ${noCache}` }],
    }),
    signal,
  });

for (const mode of ["legacy abort", "no legacy abort"] as const) {
  test(`CLI proxy, ${mode}: a client leaving cancels the upstream call, stream and JSON, coalesced or not`, {
    timeout: 60_000,
  }, async () => {
    await using sim = await SimUpstream.start({ name: "a", quiet: true, chunks: 60, chunkDelayMs: 50 });
    await using held = holdingUpstream();
    // Two groups: `gpt-test` on the sim, `held` on the holding upstream; the cache on (requests coalesce).
    const yaml = groupYaml([endpointYaml(sim.url, { name: "a" })], ["cache: true"]).replace(
      "general_settings:",
      `  - model_group: held\n    models:\n${endpointYaml(held.url, { name: "h" })}\ngeneral_settings:`,
    );
    const path = `${dir}/${mode.replaceAll(" ", "-")}.yaml`;
    await Deno.writeTextFile(path, yaml);
    const flags = mode === "legacy abort"
      ? ["--allow-all", V8_FLAGS, "--no-lock", "--config", await legacyConfig()]
      : ["--allow-all", V8_FLAGS, "--unstable-no-legacy-abort"];
    await using proxy = await startProxyProcess(["--config", path, "--port", "0"], { runFlags: flags });

    for (const [round, noCache] of [false, true].entries()) {
      // A stream left after two reads: the upstream sees it cancelled long before its 3 s end.
      const leaving = new AbortController();
      const response = await ask(proxy.url, "gpt-test", true, leaving.signal, noCache);
      assert.equal(response.headers.get("x-llmproxy-cache"), noCache ? "BYPASS" : "MISS");
      const reader = response.body!.getReader();
      await reader.read();
      await reader.read();
      leaving.abort();
      await reader.cancel().catch(() => {});
      assert.ok(
        await within(2_000, () => sim.cancelledStreams === round + 1),
        `stream not cancelled (${noCache})`,
      );

      // A JSON request left while the upstream holds it.
      const gone = new AbortController();
      const asked = ask(proxy.url, "held", false, gone.signal, noCache).catch(() => null);
      assert.ok(await within(5_000, () => held.seen.calls === round + 1), "the held call never arrived");
      gone.abort();
      await asked;
      assert.ok(
        await within(2_000, () => held.seen.cancelled === round + 1),
        `JSON not cancelled (${noCache})`,
      );
    }

    // Requests answered whole cancel nothing afterwards (legacy abort also reports a request once it is answered).
    const done = await ask(proxy.url, "gpt-test", false, new AbortController().signal, true);
    assert.equal(done.status, 200);
    await done.text();
    const streamed = await ask(proxy.url, "gpt-test", true, new AbortController().signal, true);
    const text = await streamed.text();
    assert.ok(text.trimEnd().endsWith("data: [DONE]"), text.slice(-200));
    await delay(200);
    assert.equal(sim.cancelledStreams, 2);
    // The mode is the one named: Deno warns of its legacy abort behaviour only in that mode.
    assert.equal(proxy.output().includes("legacy behavior"), mode === "legacy abort", proxy.output());
  });
}
