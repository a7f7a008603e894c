/**
 * Key names that are also names of Object's own members (`constructor`, `toString`, `hasOwnProperty`): today's
 * usage per key in `/stats` and on the dashboard (`/ui/data`) lists them like any other name.
 */

import assert from "node:assert/strict";
import { endpointYaml, startProxy } from "../_support/proxy.ts";
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

test("a caller without a key (admin keys only) is `anonymous` in every usage view; no key may take that name", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  const yaml = (keys: string[]) =>
    [
      "model_groups:",
      "  - model_group: gpt-test",
      "    models:",
      endpointYaml(sim.url, { name: "a" }),
      "general_settings:",
      "  cache: false",
      "  admin_keys: [admin-key-1]",
      ...keys,
    ].join("\n") + "\n";
  await assert.rejects(
    startProxy(yaml(["keys:", "  - name: anonymous", "    key: sk-anonymous-key"])),
    /keys\[0\]\.name must not be 'anonymous'/,
  );
  await using proxy = await startProxy(yaml([]));
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
