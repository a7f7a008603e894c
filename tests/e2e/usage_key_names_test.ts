/**
 * Key names that are also names of Object's own members (`constructor`, `toString`, `hasOwnProperty`): today's
 * usage per key in `/stats` and on the dashboard (`/ui/data`) lists them like any other name.
 */

import assert from "node:assert/strict";
import OpenAI, { APIError } from "openai";
import { endpointYaml, startProxy } from "../_support/proxy.ts";
import { digestOf } from "../../src/keys/policy.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { test } from "../_support/test.ts";

const NAMES = ["constructor", "toString", "hasOwnProperty", "plain"];

test("today's usage lists keys named constructor, toString and hasOwnProperty", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(
    [
      "model_groups:",
      "  - model_group: gpt-test",
      "    models:",
      endpointYaml(sim.url, { name: "a" }),
      "general_settings:",
      "  cache: false",
      "  admin_keys: [admin-key-1]",
      "keys:",
      ...NAMES.flatMap((name) => [`  - name: ${name}`, `    key: sk-${name}-key`]),
    ].join("\n") + "\n",
  );
  for (const name of NAMES) {
    const answer = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer sk-${name}-key`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(answer.status, 200);
    await answer.body?.cancel();
  }
  await proxy.services.usage.settled();
  const admin = { authorization: "Bearer admin-key-1" };
  const stats = await (await fetch(`${proxy.url}/stats`, { headers: admin })).json();
  const dashboard = await (await fetch(`${proxy.url}/ui/data`, { headers: admin })).json();
  for (const today of [stats.usage_today, dashboard.keys]) {
    assert.deepEqual(Object.keys(today).sort(), [...NAMES].sort());
    for (const name of NAMES) {
      assert.ok(Object.hasOwn(today, name));
      assert.equal(today[name].requests, 1, name);
    }
  }
});

/** One group on `simUrl`, no cache, the admin key `admin-key-1`, and `lines` after (a `keys:` block). */
const oneGroupConfig = (simUrl: string, ...lines: string[]) =>
  [
    "model_groups:",
    "  - model_group: gpt-test",
    "    models:",
    endpointYaml(simUrl, { name: "a" }),
    "general_settings:",
    "  cache: false",
    "  admin_keys: [admin-key-1]",
    ...lines,
  ].join("\n") + "\n";

test("a caller without a key (admin keys only) is `anonymous` in every usage view; no new key may take that name", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(oneGroupConfig(sim.url));
  const admin = { authorization: "Bearer admin-key-1" };
  const created = await fetch(`${proxy.url}/admin/keys`, {
    method: "POST",
    headers: { ...admin, "content-type": "application/json" },
    body: JSON.stringify({ name: "anonymous" }),
  });
  assert.equal(created.status, 400);
  assert.match((await created.json()).error.message, /must not be 'anonymous'/);
  const answer = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
  });
  assert.equal(answer.status, 200);
  await answer.body?.cancel();
  await proxy.services.usage.settled();
  const stats = await (await fetch(`${proxy.url}/stats`, { headers: admin })).json();
  const dashboard = await (await fetch(`${proxy.url}/ui/data`, { headers: admin })).json();
  for (const today of [stats.usage_today, dashboard.keys]) {
    assert.deepEqual(Object.keys(today), ["anonymous"]);
    assert.equal(today.anonymous.requests, 1);
  }
  const metrics = await (await fetch(`${proxy.url}/metrics`, { headers: admin })).text();
  assert.match(
    metrics,
    /^llmproxy_key_requests_total\{key="anonymous",group="gpt-test",endpoint="[^"]+"\} 1$/m,
  );
  const usage = await (await fetch(`${proxy.url}/admin/usage?key=anonymous`, { headers: admin })).json();
  assert.deepEqual(usage.data.map((row: { key: string; requests: number }) => [row.key, row.requests]), [
    ["anonymous", 1],
  ]);
});

/** The usage views of `proxy`: `/stats` today, `/metrics` per-key requests, warnings about the name `anonymous`. */
async function views(
  proxy: { url: string; logs: string[]; services: { usage: { settled(): Promise<void> } } },
) {
  await proxy.services.usage.settled();
  const admin = { authorization: "Bearer admin-key-1" };
  const stats = await (await fetch(`${proxy.url}/stats`, { headers: admin })).json();
  const metrics = await (await fetch(`${proxy.url}/metrics`, { headers: admin })).text();
  return {
    today: Object.fromEntries(
      Object.entries(stats.usage_today as Record<string, { requests: number }>).map((
        [key, v],
      ) => [key, v.requests]),
    ),
    metrics: [...metrics.matchAll(/^llmproxy_key_requests_total\{key="([^"]+)",[^}]*\} (\d+)$/gm)].map((m) =>
      `${m[1]} ${m[2]}`
    ),
    warnings: proxy.logs.filter((line) => line.includes("is named 'anonymous'")),
  };
}

const ask = async (url: string, key?: string) => {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: key ? { authorization: `Bearer ${key}` } : {},
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
  });
  await response.body?.cancel();
  return response.status;
};

test("a keys: entry named `anonymous` loads (it did before): counted as `anonymous (key)`, one warning with the fix", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(
    oneGroupConfig(sim.url, "keys:", "  - name: anonymous", "    key: sk-anonymous-key"),
  );
  assert.equal(await ask(proxy.url, "sk-anonymous-key"), 200);
  assert.equal(await ask(proxy.url), 401, "a client key exists: callers without one are refused");
  const seen = await views(proxy);
  assert.deepEqual(seen.today, { "anonymous (key)": 1 });
  assert.deepEqual(seen.metrics, ["anonymous (key) 1"]);
  assert.equal(seen.warnings.length, 1);
  assert.match(seen.warnings[0], /Rename it/);
});

test("a runtime key named `anonymous` from an older version works, apart from keyless usage, until revoked", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(oneGroupConfig(sim.url));
  assert.equal(await ask(proxy.url), 200, "no client key: callers without one are let in");
  // What `POST /admin/keys {"name": "anonymous"}` of an older version left in the store.
  const { store, keys } = proxy.services;
  await store.set(
    "keys:runtime",
    JSON.stringify({
      version: "old-1",
      keys: [{
        name: "anonymous",
        digest: digestOf("sk-old-anonymous"),
        created: "2026-11-01T00:00:00Z",
        policy: {},
      }],
    }),
  );
  await store.set("keys:version", "old-1");
  await keys.refresh();
  assert.equal(await ask(proxy.url, "sk-old-anonymous"), 200);
  assert.equal(await ask(proxy.url, "sk-old-anonymous"), 200);
  const seen = await views(proxy);
  assert.deepEqual(seen.today, { anonymous: 1, "anonymous (key)": 2 });
  assert.deepEqual(seen.metrics.toSorted(), ["anonymous (key) 2", "anonymous 1"]);
  assert.equal(seen.warnings.length, 1);
  // Its name still finds it: revoked, callers without a key are let in again.
  const admin = { authorization: "Bearer admin-key-1" };
  const revoked = await fetch(`${proxy.url}/admin/keys/anonymous`, { method: "DELETE", headers: admin });
  assert.equal(revoked.status, 200);
  await revoked.body?.cancel();
  assert.equal(await ask(proxy.url), 200);
  const after = await views(proxy);
  assert.deepEqual(after.today, { anonymous: 2, "anonymous (key)": 2 });
  assert.equal(after.warnings.length, 1, "warned once");
});

test("a key named `anonymous` still reaches the responses it created before: owned by its name, as its files", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(
    oneGroupConfig(
      sim.url,
      "keys:",
      "  - name: anonymous",
      "    key: sk-anonymous-key",
      "  - name: other",
      "    key: sk-other-key",
    ),
  );
  const client = (key: string) => new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: key, maxRetries: 0 });
  // One made now, and one an older version recorded (owner: the key's name, which usage also called it then).
  const made = await client("sk-anonymous-key").responses.create({ model: "gpt-test", input: "hi" });
  const older = await (await fetch(`${sim.url}/v1/responses`, {
    method: "POST",
    headers: { authorization: "Bearer sk-test-a", "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", input: "from before" }),
  })).json();
  const { store } = proxy.services;
  await store.set(`owner:${older.id}`, "anonymous", 60_000);
  await store.set(`aff:${older.id}`, "a", 60_000);
  for (const id of [made.id, older.id]) {
    assert.equal((await client("sk-anonymous-key").responses.retrieve(id)).id, id);
    const next = await client("sk-anonymous-key").responses.create({
      model: "gpt-test",
      previous_response_id: id,
      input: "and then?",
    });
    assert.equal(next.status, "completed");
    await assert.rejects(client("sk-other-key").responses.retrieve(id), (error) => {
      assert.ok(error instanceof APIError);
      assert.equal(error.status, 404, "still no other key's");
      return true;
    });
  }
});
