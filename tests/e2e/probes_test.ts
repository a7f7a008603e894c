/**
 * Active health probes through the real proxy: a GET of the models list (never a completion), one prober per
 * interval across instances sharing Redis, results shared, a cooled endpoint back as soon as it answers.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const chat = async (url: string) => {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
  });
  await response.body?.cancel();
  return { status: response.status, endpoint: response.headers.get("x-llmproxy-endpoint") };
};

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(25);
  }
}

/** Waits for a probe of `sim` to come (and be answered as it is told now): a probe sees what its requests saw. */
async function probed(sim: SimUpstream) {
  const before = sim.requests.filter((r) => r.method === "GET").length;
  await until("a probe", () => sim.requests.filter((r) => r.method === "GET").length > before);
  await delay(50);
}

// The interval is 1 s, so a probe has 800 ms to be answered: with 0.2 s (160 ms), at load ~15 a probe of the
// healthy endpoint b, answered by a simulated upstream on this test's own thread, timed out and cooled b down for
// the test's 600 s (4 of 6 runs under three busy loops: "No healthy endpoint ... b: cooling down").
test("a cooled endpoint serves again as soon as it answers its probe; probes are GETs of the models list", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(
    groupYaml([
      endpointYaml(a.url, { name: "a", extra: "        priority: 0" }),
      endpointYaml(b.url, { name: "b", extra: "        priority: 1" }),
    ], ["health_probe_interval: 1"]).replace("cooldown_time: 30", "cooldown_time: 600"),
  );
  // a fails a request and its probes: it cools down for 10 minutes, b serves.
  a.always({ kind: "status", status: 500 });
  assert.equal((await chat(proxy.url)).endpoint, "b");
  assert.equal((await chat(proxy.url)).endpoint, "b");
  await probed(a);
  // a recovers: its next probe brings it back long before the cooldown would end.
  a.always({ kind: "ok" });
  const recoveredAt = Date.now();
  await until("a to serve again", async () => (await chat(proxy.url)).endpoint === "a");
  assert.ok(Date.now() - recoveredAt < 3000);
  const probes = a.requests.filter((r) => r.method === "GET");
  assert.ok(probes.length > 0);
  assert.ok(probes.every((r) => r.path.endsWith("/models")), probes.map((r) => r.path).join());
  assert.ok(a.requests.filter((r) => r.method === "POST").length >= 2);
  assert.ok(proxy.logs.some((line) => line.includes("back in service")));
});

test({
  name: "instances sharing Redis: one prober per interval, the others revive from its shared results",
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis();
    await using a = await SimUpstream.start({ name: "a", quiet: true });
    await using b = await SimUpstream.start({ name: "b", quiet: true });
    const yaml = groupYaml([
      endpointYaml(a.url, { name: "a", extra: "        priority: 0" }),
      endpointYaml(b.url, { name: "b", extra: "        priority: 1" }),
    ], ["health_probe_interval: 0.3", `redis_url: ${redis.url}`]).replace(
      "cooldown_time: 30",
      "cooldown_time: 600",
    );
    await using one = await startProxy(yaml);
    await using two = await startProxy(yaml);
    await using three = await startProxy(yaml);
    const started = Date.now();
    await delay(1600);
    const elapsed = (Date.now() - started) / 300;
    const probes = a.requests.filter((r) => r.method === "GET").length;
    // At most one round per interval across the three (plus one at each start-up): never three per interval.
    assert.ok(
      probes >= 2 && probes <= Math.ceil(elapsed) + 2,
      `${probes} probes in ${elapsed.toFixed(1)} intervals`,
    );

    a.always({ kind: "status", status: 500 });
    assert.equal((await chat(one.url)).endpoint, "b");
    // The cooldown is shared: the other instances send to b too.
    assert.equal((await chat(two.url)).endpoint, "b");
    await probed(a);
    a.always({ kind: "ok" });
    for (const proxy of [one, two, three]) {
      await until("a back on every instance", async () => (await chat(proxy.url)).endpoint === "a");
    }
  },
});

/** An upstream whose models list answers while its chat completions fail with 500. */
function listsButFails() {
  let chats = 0;
  let lists = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    await request.body?.cancel();
    if (request.method === "GET") {
      lists++;
      return Response.json({ object: "list", data: [{ id: "upstream-model", object: "model" }] });
    }
    chats++;
    return Response.json({ error: { message: "broken", type: "server_error" } }, { status: 500 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    chats: () => chats,
    lists: () => lists,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

// A probe that takes longer than its timeout (0.8 of the interval, at least 100 ms) counts as a failed one, which
// (rightly) lets the next answered probe end the cooldown: at 0.1 s a loaded machine made that happen now and then.
const PROBE_INTERVAL = 0.5;

test("an endpoint whose models list answers while its requests fail cools down in full: probes do not revive it", async () => {
  await using broken = listsButFails();
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(
    groupYaml([
      endpointYaml(broken.url, { name: "broken", extra: "        priority: 0" }),
      endpointYaml(b.url, { name: "b", extra: "        priority: 1" }),
    ], [`health_probe_interval: ${PROBE_INTERVAL}`, "allowed_fails: 1"]).replace(
      "cooldown_time: 30",
      "cooldown_time: 600",
    ),
  );
  assert.equal((await chat(proxy.url)).endpoint, "b");
  assert.equal(broken.chats(), 1);
  // Four probe rounds, each answered: before, each one ended the cooldown and a request went to `broken` again.
  const lists = broken.lists();
  await until("four probes", () => broken.lists() >= lists + 4);
  for (let i = 0; i < 5; i++) assert.equal((await chat(proxy.url)).endpoint, "b");
  assert.equal(broken.chats(), 1, "no request sent to the cooling endpoint");
  assert.equal(proxy.logs.filter((line) => line.includes("it cools down in full")).length, 1);
});

test({
  name:
    "instances with clocks a minute apart: a probe ends only the outage it saw, whatever either clock says",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis();
    await using a = await SimUpstream.start({ name: "a", quiet: true });
    await using b = await SimUpstream.start({ name: "b", quiet: true });
    const yaml = (probes: boolean) =>
      groupYaml([
        endpointYaml(a.url, { name: "a", extra: "        priority: 0" }),
        endpointYaml(b.url, { name: "b", extra: "        priority: 1" }),
      ], [...(probes ? ["health_probe_interval: 0.1"] : []), `redis_url: ${redis.url}`, "allowed_fails: 1"])
        .replace("cooldown_time: 30", "cooldown_time: 600");
    // `ahead` probes with its clock a minute ahead; `plain` (no probes) serves the requests that fail.
    await using ahead = await startProxy(yaml(true), {
      clock: { now: () => Date.now() + 60_000, sleep: (ms) => delay(ms) },
    });
    await using plain = await startProxy(yaml(false));
    await probed(a);
    a.always({ kind: "status", status: 500 });
    assert.equal((await chat(plain.url)).endpoint, "b");
    // Another instance's cooldown reaches `ahead` through the health channel and one read, not at once (README,
    // "Endpoint health without a round trip"): on a loaded machine the next request could come first.
    const told = () => (ahead.services.store.readHealthNow?.(["a"])?.[0].cooldownUntil ?? 0) > 0;
    await until("ahead told of a's cooldown", told);
    const failed = a.requests.filter((r) => r.method === "POST").length;
    // Before: the probe `ahead` had answered a minute "after" the cooldown began, which ended it at once.
    for (let i = 0; i < 5; i++) assert.equal((await chat(ahead.url)).endpoint, "b");
    assert.equal(a.requests.filter((r) => r.method === "POST").length, failed, "a still cools down");
    // a comes back: the first probe that answers after one failed ends the cooldown on every instance.
    await probed(a);
    a.always({ kind: "ok" });
    await until("a back through ahead", async () => (await chat(ahead.url)).endpoint === "a");
  },
});

test("failures counted by requests are not forgiven by probes that answer: the endpoint still reaches its cooldown", async () => {
  await using broken = listsButFails();
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(
    groupYaml([
      endpointYaml(broken.url, { name: "broken", extra: "        priority: 0" }),
      endpointYaml(b.url, { name: "b", extra: "        priority: 1" }),
    ], [`health_probe_interval: ${PROBE_INTERVAL}`, "allowed_fails: 2"]).replace(
      "cooldown_time: 30",
      "cooldown_time: 600",
    ),
  );
  // One failing request per probe interval or so: before, each answered probe set the count back to 0, so the
  // endpoint never cooled down and every request paid a failed attempt on it first.
  for (let i = 0; i < 4; i++) {
    assert.equal((await chat(proxy.url)).endpoint, "b");
    const lists = broken.lists();
    await until("two probes", () => broken.lists() >= lists + 2);
  }
  assert.equal(broken.chats(), 2, "cooling down after its second failed request");
});
