/**
 * Config reload: the new config is served, requests in flight finish on the old one, endpoint state survives for
 * unchanged endpoint ids, and a bad file leaves the current config live. In-process via LiveApp, then the real
 * CLI with SIGHUP.
 */

import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import { ConfigError } from "../../src/config/load.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { LiveApp } from "../../src/live_app.ts";
import { createLogger } from "../../src/logger.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const ask = (url: string, model: string, stream = false) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model, stream, messages: [{ role: "user", content: `hello ${model}` }] }),
  });

test("reload: new groups served, in-flight stream finishes, endpoint state and metrics survive", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({
    name: "b",
    quiet: true,
    chunks: 6,
    chunkDelayMs: 60,
    responseHeaders: { "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499" },
  });
  await using c = await SimUpstream.start({ name: "c", quiet: true });
  const before = groupYaml([endpointYaml(a.url, { name: "a" }), endpointYaml(b.url, { name: "b" })]);
  // The same endpoints a and b, plus a new group.
  const afterWithBeta = before.replace(
    "general_settings:",
    ["  - model_group: beta", "    models:", endpointYaml(c.url, { name: "c" }), "general_settings:"].join(
      "\n",
    ),
  );
  const logs: string[] = [];
  const logger = createLogger({ level: "debug", write: (line) => logs.push(line) });
  const live = await LiveApp.start(parseConfig(before, "test.yaml", () => undefined), { logger });
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, live.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  try {
    // a fails once and cools down (allowed_fails 1).
    a.next({ kind: "status", status: 500 });
    while (a.count() === 0) await (await ask(url, "gpt-test")).body?.cancel();
    // A slow stream from b is in flight across the reload.
    const streaming = await ask(url, "gpt-test", true);
    assert.equal(streaming.headers.get("x-llmproxy-endpoint"), "b");
    const streamText = streaming.text();

    assert.equal(
      await live.reload(() => Promise.resolve(parseConfig(afterWithBeta, "test.yaml", () => undefined))),
      true,
    );
    assert.match(await streamText, /data: \[DONE\]/, "the in-flight stream finished");

    const beta = await ask(url, "beta");
    assert.equal(beta.status, 200);
    assert.equal(beta.headers.get("x-llmproxy-endpoint"), "c");
    await beta.body?.cancel();

    const stats = await (await fetch(`${url}/stats`)).json();
    const byId = new Map(stats.endpoints.map((e: { id: string }) => [e.id, e]));
    assert.equal(
      (byId.get("a") as { state: string }).state,
      "cooling_down",
      "a's cooldown survived the reload",
    );
    assert.ok((byId.get("b") as { requests: number }).requests >= 1, "b's counters survived");
    assert.deepEqual(
      (byId.get("b") as { rate_limit: { remaining_requests: number } | null }).rate_limit?.remaining_requests,
      499,
      "b's last rate-limit figures survived",
    );
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /llmproxy_config_reloads_total\{result="success"\} 1/);
    assert.match(metrics, /llmproxy_cooldowns_total\{group="gpt-test",endpoint="a",reason="failures"\} 1/);

    // A config that does not load: logged, counted, and the current one stays.
    const bad = () =>
      Promise.reject(new ConfigError("test.yaml", ["model_groups[0].models[0].weight must be >= 0, got -1"]));
    assert.equal(await live.reload(bad), false);
    const still = await ask(url, "beta");
    assert.equal(still.status, 200);
    await still.body?.cancel();
    const failed = logs.map((line) => JSON.parse(line)).find((line) =>
      line.msg.startsWith("config reload failed")
    );
    assert.ok(failed, "a log line says the reload failed");
    assert.equal(failed.level, "error");
    assert.match(failed.error, /weight must be >= 0, got -1/);
    assert.match(
      await (await fetch(`${url}/metrics`)).text(),
      /llmproxy_config_reloads_total\{result="failure"\} 1/,
    );
  } finally {
    await server.shutdown();
    await live.close();
  }
});

test("SIGHUP reloads the config file; a bad file is rejected with a log line and the old config stays", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  const dir = await Deno.makeTempDir();
  const path = `${dir}/llmproxy.yaml`;
  try {
    await Deno.writeTextFile(path, groupYaml([endpointYaml(sim.url)], [], "alpha"));
    await using proc = await startProxyProcess(["--config", path, "--port", "0"]);
    assert.equal((await ask(proc.url, "alpha")).status, 200);

    await Deno.writeTextFile(path, groupYaml([endpointYaml(sim.url)], [], "beta"));
    proc.child.kill("SIGHUP");
    await until(async () => (await drain(ask(proc.url, "beta"))) === 200);
    assert.equal(await drain(ask(proc.url, "alpha")), 404, "the old group is gone");
    // Info lines are written in batches a few milliseconds apart: wait for it rather than race it.
    await until(() => Promise.resolve(/"msg":"config reloaded"/.test(proc.output())));

    await Deno.writeTextFile(path, "model_groups:\n  - model_group: [unclosed\n");
    proc.child.kill("SIGHUP");
    await until(() => Promise.resolve(proc.output().includes("config reload failed")));
    assert.equal(await drain(ask(proc.url, "beta")), 200, "the old config is still served");
    const line = proc.output().split("\n").find((l) => l.includes("config reload failed"))!;
    assert.match(JSON.parse(line).error, /YAML syntax error at line \d+/);
    assert.equal(await proc.stop("SIGTERM"), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function drain(pending: Promise<Response>): Promise<number> {
  const response = await pending;
  await response.body?.cancel();
  return response.status;
}

async function until(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await delay(25);
  }
}

test("reload keeps the upstream connection pool for the same client, closes it on a change; shutdown closes it", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  const config = (client: string) =>
    parseConfig(
      groupYaml([endpointYaml(sim.url, { name: "a" })], [`upstream_client: ${client}`]),
      "t",
      () => undefined,
    );
  const live = await LiveApp.start(config("http1"), {
    logger: createLogger({ level: "error", write: () => {} }),
  });
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, live.fetch);
  const call = async () => {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(response.status, 200);
    await response.text();
  };
  try {
    await call();
    const first = live.services.upstream;
    assert.equal(first.idleConnections, 1);
    assert.ok(await live.reload(() => Promise.resolve(config("http1"))));
    assert.equal(live.services.upstream, first, "same client: the pool is kept");
    await call();
    assert.equal(first.connectionsOpened, 1, "the connection from before the reload was reused");
    assert.ok(await live.reload(() => Promise.resolve(config("fetch"))));
    assert.equal(first.idleConnections, 0, "another client: the old pool is closed");
    assert.equal(live.services.upstream.kind, "fetch");
    await call();
    assert.ok(await live.reload(() => Promise.resolve(config("http1"))));
    await call();
    assert.equal(live.services.upstream.idleConnections, 1);
  } finally {
    await server.shutdown();
    await live.close();
  }
  assert.equal(live.services.upstream.idleConnections, 0, "shutdown closes the pool");
});

/** V8's `gc()`, made reachable in this process (the proxy's own process runs with `--expose-gc`). */
function exposedGc(): () => void {
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc");
}

test("reloads keep no replaced generation alive: memory stays flat however often the config is reloaded", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true, chunks: 4, chunkDelayMs: 40 });
  const yaml = groupYaml([endpointYaml(sim.url, { name: "a" })], ["cache: true"]);
  const load = () => Promise.resolve(parseConfig(yaml, "test.yaml", () => undefined));
  const logger = createLogger({ level: "error", write: () => {} });
  const live = await LiveApp.start(await load(), { logger });
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, live.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  const gc = exposedGc();
  try {
    // A stream runs across the first reload: its generation lives until it ended, and its answer is still cached.
    const streaming = await ask(url, "gpt-test", true);
    const generations = [new WeakRef(live.services)];
    for (let i = 0; i < 30; i++) {
      assert.equal(await live.reload(load), true);
      generations.push(new WeakRef(live.services));
    }
    assert.match(await streaming.text(), /data: \[DONE\]/);
    await live.services.cache.settled();
    const again = await ask(url, "gpt-test", true);
    assert.equal(
      again.headers.get("x-llmproxy-cache"),
      "HIT",
      "the stream begun before the reloads was cached",
    );
    await again.body?.cancel();

    await delay(0);
    gc();
    const alive = generations.filter((ref) => ref.deref() !== undefined).length;
    assert.equal(alive, 1, `only the live generation is kept; ${alive} of 31 are`);
  } finally {
    await server.shutdown();
    await live.close();
  }
});
