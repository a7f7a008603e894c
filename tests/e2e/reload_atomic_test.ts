/**
 * A reload is all or nothing: the new config's services are built whole before anything of the live one changes,
 * so a build that fails at its very end leaves the old config serving as it was (its keys, endpoints, zero series
 * and health probes); one that succeeds swaps in one step and only then stops the old probes. And a request still
 * running on the old config cannot put a replaced Entra ID credential back in the token cache.
 */

import assert from "node:assert/strict";
import type { Config } from "../../src/config/config.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { LiveApp } from "../../src/live_app.ts";
import { createLogger } from "../../src/logger.ts";
import { buildServices, type ServiceOptions, type Services } from "../../src/services.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { chat, entraConfig } from "../_support/entra_proxy.ts";
import { delay, endpointYaml, groupYaml } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";
import { startTokenServer } from "../_support/token_server.ts";

const load = (yaml: string) => () => Promise.resolve(parseConfig(yaml, "test.yaml", () => undefined));

const ask = async (url: string, key: string) => {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
  });
  await response.body?.cancel();
  return { status: response.status, endpoint: response.headers.get("x-llmproxy-endpoint") };
};

const probes = (sim: SimUpstream) => sim.requests.filter((r) => r.method === "GET").length;

test("a reload whose build fails at its end leaves the old keys, endpoints, zero series and probes live", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  const yaml = (sim: SimUpstream, key: string) =>
    groupYaml([endpointYaml(sim.url, { name: sim.name })], [
      `api_keys: [${key}]`,
      "admin_keys: [admin-key]",
      "health_probe_interval: 0.1",
    ]);
  let failing = false;
  // The real build, failing after it has built everything: the latest a reload can fail.
  const build = async (config: Config, options: ServiceOptions) => {
    const services = await buildServices(config, options);
    if (failing) throw new Error("failed after the build");
    return services;
  };
  const logs: string[] = [];
  const live = await LiveApp.start(
    await load(yaml(a, "key-a"))(),
    { logger: createLogger({ level: "info", write: (line) => logs.push(line) }) },
    build,
  );
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, live.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  const metrics = async () =>
    await (await fetch(`${url}/metrics`, { headers: { authorization: "Bearer admin-key" } })).text();
  const zeros = (text: string, endpoint: string) =>
    text.includes(`llmproxy_failovers_total{group="gpt-test",endpoint="${endpoint}",reason="timeout"} 0`);
  try {
    assert.deepEqual(await ask(url, "key-a"), { status: 200, endpoint: "a" });
    failing = true;
    assert.equal(await live.reload(load(yaml(b, "key-b"))), false);
    assert.ok(logs.some((line) => line.includes("failed after the build")));
    // The old config, whole: its key (not the new one), its endpoint, its zero series, its probes.
    assert.deepEqual(await ask(url, "key-a"), { status: 200, endpoint: "a" });
    assert.equal((await ask(url, "key-b")).status, 401);
    const text = await metrics();
    assert.ok(zeros(text, "a") && !zeros(text, "b"), "the zero series are the old config's");
    assert.match(text, /llmproxy_config_reloads_total\{result="failure"\} 1/);
    const probed = probes(a);
    await delay(400);
    assert.ok(probes(a) > probed, "the old config's probes go on");
    assert.equal(probes(b), 0, "the failed build's probes never started");

    failing = false;
    assert.equal(await live.reload(load(yaml(b, "key-b"))), true);
    assert.deepEqual(await ask(url, "key-b"), { status: 200, endpoint: "b" });
    assert.equal((await ask(url, "key-a")).status, 401);
    const after = await metrics();
    assert.ok(zeros(after, "b") && !zeros(after, "a"));
    const stopped = probes(a);
    await delay(400);
    assert.equal(probes(a), stopped, "the old probes stopped");
    assert.ok(probes(b) > 0);
  } finally {
    await live.close();
  }
});

test("a request still running on the old config does not put a replaced credential back in the token cache", async () => {
  await using tokens = startTokenServer();
  // `slow` answers its first attempt with a 500 after 400 ms; `ptu` (same credential) takes the failover.
  await using slow = await SimUpstream.start({ name: "slow", quiet: true, latencyMs: 400 });
  await using ptu = await SimUpstream.start({ name: "ptu", quiet: true });
  slow.always({ kind: "status", status: 500 });
  const SECRET = "entra-secret-old-4c1d";
  const first = entraConfig(tokens, SECRET, ptu.url).replace(
    "    models:\n",
    [
      "    models:",
      "      - model: gpt-4o-deployment",
      "        priority: 0",
      "        params:",
      `          base_url: ${slow.url}`,
      "          provider: azure",
      `          api_version: "2024-10-21"`,
      "          name: slow",
      "          azure_ad:",
      "            tenant_id: t1",
      "            client_id: app-id",
      `            client_secret: ${SECRET}`,
      `            authority_host: ${tokens.url}`,
      "",
    ].join("\n"),
  ).replace(
    "        params:\n          base_url: " + ptu.url,
    "        priority: 1\n        params:\n          base_url: " + ptu.url,
  );
  const live = await LiveApp.start(await load(first)(), {
    logger: createLogger({ level: "error", write: () => {} }),
  });
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, live.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  try {
    // The request's first attempt (on `slow`) is under way when the secret is rotated.
    const running = chat(url);
    while (slow.count() === 0) await delay(10);
    assert.ok(await live.reload(load(first.replaceAll(SECRET, "rotated-secret-9"))));
    // Its failover to `ptu` runs on the old config, with the token that config already had (no new fetch).
    const answer = await running;
    assert.equal(answer.endpoint, "ptu", answer.text);
    assert.equal(tokens.calls.length, 1);
    // Back to the old secret: its token was not kept among the live ones, so a new one is asked for.
    assert.ok(await live.reload(load(first)));
    slow.always({ kind: "ok" });
    assert.equal((await chat(url)).status, 200);
    assert.deepEqual(tokens.calls.map((call) => call.params.client_secret), [SECRET, SECRET]);
  } finally {
    await live.close();
  }
});

test("a reload to another upstream client kind whose build fails closes the client it opened", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  const yaml = (kind: string) =>
    groupYaml([endpointYaml(sim.url, { name: "a" })], [`upstream_client: ${kind}`]);
  const built: Services[] = [];
  let failing = false;
  // The real build; failing, it hands back a build whose app cannot be made (the last step of a reload).
  const build = async (config: Config, options: ServiceOptions) => {
    const services = await buildServices(config, options);
    built.push(services);
    if (!failing) return services;
    return Object.create(services, {
      telemetry: {
        get() {
          throw new Error("the app could not be made");
        },
      },
    }) as Services;
  };
  const live = await LiveApp.start(await load(yaml("fetch"))(), {
    logger: createLogger({ level: "error", write: () => {} }),
  }, build);
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, live.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  try {
    failing = true;
    assert.equal(await live.reload(load(yaml("http1"))), false);
    const failed = built[1];
    assert.equal(failed.upstream.kind, "http1");
    assert.notEqual(failed.upstream, live.services.upstream);
    // A call through the failed build's client keeps no connection: it was closed (an open one would keep it).
    const endpoint = failed.config.groups[0].endpoints[0];
    const result = await failed.upstream.send({
      endpoint,
      method: "GET",
      path: "models",
      clientHeaders: new Headers(),
      requestId: "after-the-failed-reload",
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(result.kind, "response");
    if (result.kind === "response") {
      await result.response.body?.cancel();
      result.release();
    }
    assert.equal(failed.upstream.connectionsOpened, 1);
    assert.equal(failed.upstream.idleConnections, 0, "the failed build's client was left open");
    // The live config serves on, with its own client.
    assert.deepEqual(await ask(url, "any"), { status: 200, endpoint: "a" });
    assert.equal(live.services.upstream.kind, "fetch");
  } finally {
    await live.close();
  }
});
