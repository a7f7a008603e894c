/**
 * Keys managed at run time through the admin routes, on real sockets: created (the key shown once), listed (never
 * a key), changed, revoked; with Redis, a change made through instance A applies on instance B within 1 s.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";

const ADMIN = "sk-admin-keys-9c1f";
const TEAM = "sk-team-config-41aa";

function yaml(simUrl: string, settings: string[] = []): string {
  return groupYaml([endpointYaml(simUrl)], [`admin_keys: [${ADMIN}]`, ...settings]) +
    `keys:\n  - name: team-config\n    key: ${TEAM}\n    rpm: 100\n`;
}

async function call(url: string, init: RequestInit & { key?: string; json?: unknown } = {}) {
  const headers = new Headers(init.headers);
  if (init.key) headers.set("authorization", `Bearer ${init.key}`);
  const body = init.json !== undefined ? JSON.stringify(init.json) : init.body;
  const response = await fetch(url, { ...init, headers, body });
  const text = await response.text();
  return { status: response.status, text, json: () => JSON.parse(text) };
}

const chat = (url: string, key: string) =>
  call(`${url}/v1/chat/completions`, {
    method: "POST",
    key,
    json: { model: "gpt-test", messages: [{ role: "user", content: "hi" }] },
  });

test("admin routes: create (key shown once), list, change, revoke; admin key required", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(yaml(sim.url));
  const admin = `${proxy.url}/admin/keys`;
  const seen: string[] = [];

  assert.equal((await call(admin, { key: TEAM })).status, 401, "a client key is not an admin key");
  assert.equal((await call(admin)).status, 401);
  const refused = await call(admin, {
    method: "POST",
    key: ADMIN,
    json: { name: "bad", rpm: -1, tpm: 1.5, cache: "all", color: 1 },
  });
  assert.equal(refused.status, 400);
  assert.equal(
    refused.json().error.message,
    "Invalid key policy: 'rpm' Too small: expected number to be >0; 'tpm' Invalid input: expected int, received " +
      `number; 'cache' Invalid option: expected one of "shared"|"private"; unknown field 'color'`,
    "the wording zod gave these problems",
  );

  const created = await call(admin, {
    method: "POST",
    key: ADMIN,
    json: { name: "team-b", rpm: 7, models: ["gpt-*"] },
  });
  assert.equal(created.status, 201);
  const { name, key, rpm } = created.json();
  assert.deepEqual([name, rpm], ["team-b", 7]);
  assert.match(key, /^sk-llmproxy-[\w-]{40,}$/);

  // The new key works with the official SDK.
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: key, maxRetries: 0 });
  const answer = await client.chat.completions.create({
    model: "gpt-test",
    messages: [{ role: "user", content: "x" }],
  });
  assert.match(answer.choices[0].message.content ?? "", /echo: x/);

  const again = await call(admin, { method: "POST", key: ADMIN, json: { name: "team-config" } });
  assert.equal(again.status, 409, "names are unique across config and runtime keys");

  const list = await call(admin, { key: ADMIN });
  seen.push(list.text);
  assert.deepEqual(
    list.json().data.map((entry: { name: string; source: string }) => [entry.name, entry.source]),
    [
      ["team-config", "config"],
      ["team-b", "runtime"],
    ],
  );

  const patched = await call(`${admin}/team-b`, {
    method: "PATCH",
    key: ADMIN,
    json: { rpm: null, tpm: 1000 },
  });
  seen.push(patched.text);
  assert.equal(patched.status, 200);
  assert.deepEqual([patched.json().rpm, patched.json().tpm], [null, 1000]);
  assert.equal(
    (await call(`${admin}/team-config`, { method: "PATCH", key: ADMIN, json: { rpm: 1 } })).status,
    409,
  );
  assert.equal((await call(`${admin}/nobody`, { method: "DELETE", key: ADMIN })).status, 404);

  assert.equal((await call(`${admin}/team-b`, { method: "DELETE", key: ADMIN })).status, 200);
  const gone = await chat(proxy.url, key);
  assert.equal(gone.status, 401);
  assert.equal(gone.json().error.code, "invalid_api_key");
  assert.equal((await chat(proxy.url, TEAM)).status, 200, "other keys are untouched");

  const everything = [...seen, ...proxy.logs].join("\n");
  for (const secret of [key, TEAM, ADMIN]) assert.ok(!everything.includes(secret), "a key leaked");
});

test({
  name: "two instances on one Redis: a key created or revoked through A applies on B within 1 s",
  ignore: !hasRedis,
  async fn() {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({ quiet: true });
    const config = yaml(sim.url, [`redis_url: ${redis.url}`]);
    await using a = await startProxy(config);
    await using b = await startProxy(config);
    const created = await call(`${a.url}/admin/keys`, {
      method: "POST",
      key: ADMIN,
      json: { name: "moving" },
    });
    const { key } = created.json();
    const started = performance.now();
    while ((await chat(b.url, key)).status !== 200) {
      assert.ok(performance.now() - started < 1000, "B did not accept the new key within 1 s");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal((await call(`${b.url}/admin/keys`, { key: ADMIN })).json().data.length, 2);

    assert.equal((await call(`${a.url}/admin/keys/moving`, { method: "DELETE", key: ADMIN })).status, 200);
    const revoked = performance.now();
    let status = 200;
    while ((status = (await chat(b.url, key)).status) === 200) {
      assert.ok(performance.now() - revoked < 1000, "B still served the revoked key after 1 s");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(status, 401);
    const lockedOutMs = performance.now() - revoked;
    assert.ok(lockedOutMs < 1000, `locked out after ${Math.round(lockedOutMs)} ms`);
  },
});
