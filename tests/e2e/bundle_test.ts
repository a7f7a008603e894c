/**
 * The bundle (`scripts/bundle.ts`), which the release binary is compiled from, run as the binary runs it (the
 * compile flags and permissions, no `--allow-all`): chat, a stream, the dashboard's lazily loaded files, a SIGHUP
 * reload, the Redis store's chunk and the demo's. A change that bundles badly (a lost chunk, a CommonJS package
 * without `require`, a permission the binary lacks) fails here, not in a release.
 */

import assert from "node:assert/strict";
import { COMPILE_FLAGS } from "../../scripts/compile.ts";
import { bundle } from "../../scripts/bundle.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { NODE_GLOBALS_WATCH } from "../_support/node_globals.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

// Bundled once for the file, removed when it ends. Outside any test's deadline, so bounded here: a `deno bundle`
// that hangs (a lock on the npm cache held by another run) is killed and fails the file instead of the suite hanging.
const dir = await Deno.makeTempDir({ prefix: "llmproxy-bundle-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const bundling = new AbortController();
const bundleTimer = setTimeout(() => bundling.abort(), 180_000);
const main = await bundle(`${dir}/bundle`, undefined, bundling.signal).finally(() =>
  clearTimeout(bundleTimer)
);
const run = (args: string[]) => startProxyProcess(args, { main, runFlags: COMPILE_FLAGS });

const ask = (url: string, model: string, stream = false) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, stream, messages: [{ role: "user", content: `hello ${model}` }] }),
  });

async function until(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await delay(25);
  }
}

/** Specifiers `file` imports statically (`import ... from "x"`, `import "x"`; not `import("x")`). */
function staticImports(text: string): string[] {
  return [...text.matchAll(/(?:\bfrom|\bimport)\s*"([\w./:@-]+)"/g)].map((match) => match[1]);
}

// Deno's Node compatibility layer costs ~3 MiB idle RSS (issue 22.4a): only a chunk loaded on demand may need it.
test("bundle: nothing on the start path imports a node: module", async () => {
  const seen = new Set<string>();
  const node: string[] = [];
  const visit = async (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    for (const specifier of staticImports(await Deno.readTextFile(`${dir}/bundle/${name}`))) {
      if (specifier.startsWith("./")) await visit(specifier.slice(2));
      else node.push(`${name} imports ${specifier}`);
    }
  };
  await visit("main.js");
  assert.ok(seen.size > 1, "main.js imports its shared chunks");
  assert.deepEqual(node, []);
  // The Redis store's chunk (ioredis, CommonJS) still gets its require.
  const redis = [...Deno.readDirSync(`${dir}/bundle`)].find(({ name }) => name.startsWith("redis-"))!.name;
  const required = new Set<string>();
  const collect = async (name: string) => {
    for (const specifier of staticImports(await Deno.readTextFile(`${dir}/bundle/${name}`))) {
      if (specifier.startsWith("./")) await collect(specifier.slice(2));
      else required.add(specifier);
    }
  };
  await collect(redis);
  assert.ok(required.has("node:module"), [...required].join(", "));
});

/** The chunks loaded at start: main.js and what it imports statically, transitively. */
async function startChunks(): Promise<Set<string>> {
  const start = new Set<string>();
  const visit = async (name: string) => {
    if (start.has(name)) return;
    start.add(name);
    for (const specifier of staticImports(await Deno.readTextFile(`${dir}/bundle/${name}`))) {
      if (specifier.startsWith("./")) await visit(specifier.slice(2));
    }
  };
  await visit("main.js");
  return start;
}

/** The chunks whose text includes `marker`, and those of them loaded at start. */
async function holding(marker: string): Promise<{ all: string[]; atStart: string[] }> {
  const start = await startChunks();
  const all = [...Deno.readDirSync(`${dir}/bundle`)].map(({ name }) => name)
    .filter((name) => Deno.readTextFileSync(`${dir}/bundle/${name}`).includes(marker));
  return { all, atStart: all.filter((name) => start.has(name)) };
}

// js-yaml builds its tables when it loads (0.4-0.6 MiB idle RSS, issue 22.4a): plain block YAML is read without it.
test("bundle: js-yaml is not on the start path", async () => {
  const { all, atStart } = await holding("YAMLException");
  assert.ok(all.length > 0, "some chunk holds js-yaml");
  assert.deepEqual(atStart, []);
});

// Hono and every route beyond generation load at the first request that needs them (~0.45 MiB idle RSS, issue
// 22.4a); the dashboard, health and model requests of the next test load them.
test("bundle: Hono's router and the routes beyond generation are not on the start path", async () => {
  for (
    const marker of ["Can not add a route since the matcher is already built", "Context is not finalized"]
  ) {
    const { all, atStart } = await holding(marker);
    assert.ok(all.length > 0, `some chunk holds Hono's '${marker}'`);
    assert.deepEqual(atStart, [], marker);
  }
});

// Code only some configs run is imported when the config asks for it (issue 22.4a): the local fallback of the Redis
// store (its outage tracking) with Redis, the health prober with `health_probe_interval`. The Redis and probe tests
// below load them.
test("bundle: the Redis store's local fallback and the health prober are not on the start path", async () => {
  for (const marker of ["store unavailable; serving local state", "health probe round failed"]) {
    const { all, atStart } = await holding(marker);
    assert.ok(all.length > 0, `some chunk holds '${marker}'`);
    assert.deepEqual(atStart, [], marker);
  }
});

test("bundle: chat, a stream, the dashboard's files and a SIGHUP reload", { timeout: 40_000 }, async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  const path = `${dir}/reload.yaml`;
  await Deno.writeTextFile(path, groupYaml([endpointYaml(sim.url, { name: "a" })], [], "alpha"));
  await using proxy = await run(["--config", path, "--port", "0", "--log-level", "info"]);

  const chat = await ask(proxy.url, "alpha");
  assert.equal(chat.status, 200);
  assert.match((await chat.json()).choices[0].message.content, /hello alpha/);

  const stream = await ask(proxy.url, "alpha", true);
  assert.equal(stream.status, 200);
  assert.equal(stream.headers.get("content-type")?.split(";")[0], "text/event-stream");
  const events = await stream.text();
  assert.match(events, /"delta"/);
  assert.match(events, /data: \[DONE\]\n\n$/);

  // The page and uPlot come from a chunk of their own, imported at the first /ui request.
  const page = await fetch(`${proxy.url}/ui`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /\/ui\/assets\/uplot\.js/);
  const script = await fetch(`${proxy.url}/ui/assets/uplot.js`);
  assert.equal(script.status, 200);
  assert.match(await script.text(), /uPlot/);
  // Hono's routes (their own chunk, loaded by the first of these requests): the model list.
  const models = await fetch(`${proxy.url}/v1/models`);
  assert.equal(models.status, 200);
  assert.match(await models.text(), /"alpha"/);

  // Plain block YAML at start; the reload has an anchor, which only js-yaml reads: its chunk loads now.
  const anchored = groupYaml([endpointYaml(sim.url, { name: "a" })], [], "beta")
    .replace("cooldown_time: 30", "cooldown_time: &wait 30\n  max_wait_for_capacity: *wait");
  await Deno.writeTextFile(path, anchored);
  proxy.child.kill("SIGHUP");
  await until(async () => {
    const response = await ask(proxy.url, "beta");
    await response.body?.cancel();
    return response.status === 200;
  });
  const gone = await ask(proxy.url, "alpha");
  assert.equal(gone.status, 404);
  await gone.body?.cancel();
  await until(() => Promise.resolve(proxy.output().includes("config reloaded")));
  assert.equal(await proxy.stop("SIGTERM"), 0);
});

// A chunk missing from an install (a partial copy, a broken package): the routes beyond generation cannot be
// imported. Those requests get the OpenAI error envelope with their request id, each goes through the same
// middleware as any other answer (its access-log line, and the series of `/metrics` written with it, which this
// process cannot serve: `/metrics` is one of those routes) and is logged as a 500, the failure to load is logged
// once, and generation still works.
test("bundle: routes whose chunk cannot be imported answer an OpenAI-shaped 500 with its id, logged", async () => {
  const broken = `${dir}/broken`;
  await Deno.mkdir(broken);
  for (const { name } of Deno.readDirSync(`${dir}/bundle`)) {
    await Deno.copyFile(`${dir}/bundle/${name}`, `${broken}/${name}`);
  }
  const { all, atStart } = await holding("Context is not finalized");
  assert.ok(all.length > 0 && atStart.length === 0, "Hono's chunk is loaded on demand");
  for (const name of all) await Deno.remove(`${broken}/${name}`);
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  const path = `${dir}/broken.yaml`;
  await Deno.writeTextFile(path, groupYaml([endpointYaml(sim.url, { name: "a" })], [], "alpha"));
  await using proxy = await startProxyProcess(["--config", path, "--port", "0", "--log-level", "info"], {
    main: `${broken}/main.js`,
    runFlags: COMPILE_FLAGS,
  });
  const ids: string[] = [];
  // The first sends its own id (echoed), the others get one made up.
  const asked = [["/v1/models", "broken-models-1"], ["/health", ""], ["/v1/models", ""]];
  for (const [route, sent] of asked) {
    const response = await fetch(`${proxy.url}${route}`, { headers: sent ? { "x-request-id": sent } : {} });
    assert.equal(response.status, 500, route);
    assert.equal(response.headers.get("content-type"), "application/json");
    const id = response.headers.get("x-request-id");
    if (sent) assert.equal(id, sent, route);
    else assert.match(id ?? "", /^[\w-]{16,}$/, route);
    ids.push(id!);
    const { error } = await response.json();
    assert.deepEqual(
      [error.type, error.code, typeof error.message],
      ["server_error", "routes_unavailable", "string"],
      route,
    );
  }
  const chat = await ask(proxy.url, "alpha");
  assert.equal(chat.status, 200);
  await chat.body?.cancel();
  // Stopped first: the log is written in batches, and a stop writes what is left.
  assert.equal(await proxy.stop("SIGTERM"), 0);
  const logged = proxy.output().split("cannot load the routes beyond generation").length - 1;
  assert.equal(logged, 1, proxy.output());
  // One access-log line per answer, with its id and status (`/health`'s at debug, as for any `/health`).
  const lines = proxy.output().split("\n").filter((line) => line.includes('"msg":"request"'));
  for (const id of [ids[0], ids[2]]) {
    const line = lines.find((line) => line.includes(`"request_id":"${id}"`));
    assert.ok(line, `no access-log line for ${id}:\n${proxy.output()}`);
    assert.equal(JSON.parse(line).status, 500, line);
    assert.equal(JSON.parse(line).path, "/v1/models", line);
  }
  // Every one is a 500 logged as the proxy's error, with its id, as any other (`/health`'s too).
  for (const id of ids) {
    const failed = proxy.output().split("\n").find((line) =>
      line.includes(`"request_id":"${id}"`) &&
      line.includes('"msg":"request failed"')
    );
    assert.ok(failed && JSON.parse(failed).code === "routes_unavailable", `${id}:\n${proxy.output()}`);
  }
});

// Deno 2.9's timer globals are Node's, and their first use loads Node's compatibility modules (1.7 MiB idle RSS).
test("bundle: start, requests, health probes and a stop use none of Deno's lazily loaded Node globals", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  const path = `${dir}/globals.yaml`;
  const settings = ["cache: true", "health_probe_interval: 1"];
  await Deno.writeTextFile(path, groupYaml([endpointYaml(sim.url, { name: "a" })], settings));
  await using proxy = await startProxyProcess(
    [main, "--config", path, "--port", "0", "--log-level", "debug"],
    { main: NODE_GLOBALS_WATCH, runFlags: COMPILE_FLAGS },
  );
  const chat = await ask(proxy.url, "gpt-test");
  assert.equal(chat.status, 200);
  await chat.body?.cancel();
  const stream = await ask(proxy.url, "gpt-test", true);
  assert.match(await stream.text(), /data: \[DONE\]\n\n$/);
  const health = await fetch(`${proxy.url}/health`);
  assert.equal(health.status, 200);
  await health.body?.cancel();
  await until(() => Promise.resolve(sim.count() >= 3), 10_000);
  // The timers of the start-up collection (settle.ts), the logger, the deadlines and the connection pool ran.
  await until(() => Promise.resolve(proxy.output().includes("start-up garbage collected")));
  assert.equal(await proxy.stop("SIGTERM"), 0);
  assert.doesNotMatch(proxy.output(), /node global used/);
});

test("bundle: the Redis store's chunk shares the cache between two processes", {
  ignore: !hasRedis,
  timeout: 40_000,
}, async () => {
  await using redis = await startRedis();
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  const path = `${dir}/redis.yaml`;
  await Deno.writeTextFile(
    path,
    groupYaml([endpointYaml(sim.url, { name: "a" })], ["cache: true", `redis_url: ${redis.url}`]),
  );
  await using first = await run(["--config", path, "--port", "0"]);
  await using second = await run(["--config", path, "--port", "0"]);
  const miss = await ask(first.url, "gpt-test");
  assert.equal(miss.status, 200);
  assert.equal(miss.headers.get("x-llmproxy-cache"), "MISS");
  await miss.body?.cancel();
  // The entry is written off the response path: the other process sees it once it landed in Redis.
  await until(async () => {
    const response = await ask(second.url, "gpt-test");
    await response.body?.cancel();
    return response.headers.get("x-llmproxy-cache") === "HIT";
  });
  assert.equal(sim.count(), 1, "one upstream call for both processes");
  assert.equal(await first.stop("SIGTERM"), 0);
  assert.equal(await second.stop("SIGTERM"), 0);
});

test("bundle: --demo loads its simulated upstream from its chunk", { timeout: 40_000 }, async () => {
  await using demo = await run(["--demo", "--port", "0"]);
  const chat = await ask(demo.url, "demo");
  assert.equal(chat.status, 200);
  assert.equal(chat.headers.get("x-llmproxy-cache"), "MISS");
  await chat.body?.cancel();
  assert.equal(await demo.stop("SIGTERM"), 0);
});

// A minified bundle renames classes, and ioredis's error replies take their `name` from their class: the store
// tells them by type (RedisStore.isReply). An error reply (here WRONGTYPE: a cache entry some other client
// overwrote with a list) is Redis answering, so the proxy must not take it for Redis being away and switch to
// local state.
test(
  "bundle: a Redis error reply is an answer, not an outage",
  { ignore: !hasRedis, timeout: 40_000 },
  async () => {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({ name: "a", quiet: true });
    const path = `${dir}/wrongtype.yaml`;
    await Deno.writeTextFile(
      path,
      groupYaml([endpointYaml(sim.url, { name: "a" })], ["cache: true", `redis_url: ${redis.url}`]),
    );
    await using proxy = await run(["--config", path, "--port", "0", "--log-level", "info"]);
    const warm = await ask(proxy.url, "gpt-test");
    assert.equal(warm.status, 200);
    await warm.body?.cancel();
    const clobber = "local n = 0 for _, k in ipairs(redis.call('KEYS', 'llmproxy:cache:*')) do " +
      "redis.call('DEL', k) redis.call('LPUSH', k, 'x') n = n + 1 end return n";
    await until(async () => Number(await redis.command("EVAL", clobber, "0")) > 0);
    for (let i = 0; i < 3; i++) {
      const response = await ask(proxy.url, "gpt-test");
      assert.equal(response.status, 200, "served while its cache entry has the wrong type");
      await response.body?.cancel();
    }
    // The reply is logged (a cache read that failed is a miss), and no outage is.
    await until(() => Promise.resolve(proxy.output().includes("WRONGTYPE")));
    await delay(300);
    assert.doesNotMatch(proxy.output(), /redis store unavailable/, "an error reply is no outage");
    assert.equal(await proxy.stop("SIGTERM"), 0);
  },
);
