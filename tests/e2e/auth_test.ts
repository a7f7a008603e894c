/** Client and admin keys through real sockets: who gets in where, and keys never leak into answers or logs. */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const CLIENT = "sk-client-4f1d2c9e";
const CLIENT_2 = "sk-client-second-77";
const ADMIN = "sk-admin-0b7e55aa";

const chatBody = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] });

async function call(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, text, headers: response.headers };
}

type HeaderMap = Record<string, string>;
const bearer = (key: string): HeaderMap => ({ authorization: `Bearer ${key}` });

test("with api_keys and admin_keys: 401 without a valid key, admin routes need the admin key", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url, { name: "one" })], [
      "api_keys: os.environ/CLIENT_KEYS",
      "admin_keys: [os.environ/ADMIN_KEY]",
    ]),
    { env: { CLIENT_KEYS: `${CLIENT},${CLIENT_2}`, ADMIN_KEY: ADMIN } },
  );
  const chat = `${proxy.url}/v1/chat/completions`;
  const seen: string[] = [];
  const post = async (headers: HeaderMap) => {
    const result = await call(chat, { method: "POST", headers, body: chatBody });
    seen.push(result.text);
    return result;
  };

  const refused: HeaderMap[] = [{}, bearer("sk-wrong"), bearer(CLIENT + "x"), { authorization: CLIENT }, {
    "api-key": "",
  }];
  for (const headers of refused) {
    const result = await post(headers);
    assert.equal(result.status, 401, JSON.stringify(headers));
    const error = JSON.parse(result.text).error;
    assert.equal(error.type, "authentication_error");
    assert.equal(error.code, "invalid_api_key");
    assert.equal(error.param, null);
    assert.equal(result.headers.get("www-authenticate"), "Bearer");
    assert.ok(result.headers.get("x-request-id"));
  }
  assert.equal(sim.count(), 0, "nothing unauthenticated reached the upstream");

  for (
    const headers of [bearer(CLIENT), bearer(CLIENT_2), { "api-key": CLIENT }, {
      authorization: `bearer ${ADMIN}`,
    }]
  ) {
    assert.equal((await post(headers)).status, 200, JSON.stringify(headers));
  }
  assert.ok(
    sim.requests.every((r) => !JSON.stringify(r.headers).includes("sk-client")),
    "client keys stay here",
  );

  // Open: /health. Client routes: any valid key. Unknown routes: 401 before 404.
  assert.equal((await call(`${proxy.url}/health`)).status, 200);
  assert.equal((await call(`${proxy.url}/v1/health`)).status, 200);
  assert.equal((await call(`${proxy.url}/v1/models`)).status, 401);
  assert.equal((await call(`${proxy.url}/v1/models`, { headers: bearer(CLIENT) })).status, 200);
  assert.equal((await call(`${proxy.url}/v1/nothing`)).status, 401);
  assert.equal((await call(`${proxy.url}/v1/nothing`, { headers: bearer(CLIENT) })).status, 404);

  for (const path of ["/stats", "/v1/stats", "/metrics", "/v1/metrics"]) {
    for (const headers of [{}, bearer(CLIENT), { "api-key": CLIENT }] as HeaderMap[]) {
      const result = await call(`${proxy.url}${path}`, { headers });
      seen.push(result.text);
      assert.equal(result.status, 401, `${path} ${JSON.stringify(headers)}`);
      assert.match(JSON.parse(result.text).error.message, /admin key/);
    }
    const ok = await call(`${proxy.url}${path}`, { headers: bearer(ADMIN) });
    seen.push(ok.text);
    assert.equal(ok.status, 200, path);
    assert.equal((await call(`${proxy.url}${path}`, { headers: { "api-key": ADMIN } })).status, 200);
  }
  for (const path of ["/cache", "/v1/cache"]) {
    assert.equal(
      (await call(`${proxy.url}${path}`, { method: "DELETE", headers: bearer(CLIENT) })).status,
      401,
    );
    const admin = await call(`${proxy.url}${path}`, { method: "DELETE", headers: bearer(ADMIN) });
    assert.notEqual(admin.status, 401, path);
  }

  // No key text anywhere: answers, /stats, /metrics, logs at debug level.
  const everything = [...seen, ...proxy.logs].join("\n");
  for (const key of [CLIENT, CLIENT_2, ADMIN]) assert.ok(!everything.includes(key), "a key leaked");
});

test("the OpenAI SDK authenticates with its apiKey and gets a typed error with a wrong one", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)], [`api_keys: [${CLIENT}]`]));
  const good = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: CLIENT, maxRetries: 0 });
  const answer = await good.chat.completions.create({
    model: "gpt-test",
    messages: [{ role: "user", content: "x" }],
  });
  assert.match(answer.choices[0].message.content ?? "", /echo: x/);
  const bad = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "sk-wrong", maxRetries: 0 });
  await assert.rejects(
    bad.chat.completions.create({ model: "gpt-test", messages: [{ role: "user", content: "x" }] }),
    (error: unknown) => error instanceof OpenAI.AuthenticationError && error.code === "invalid_api_key",
  );
});

test("only api_keys: operator routes take a client key; only admin_keys: client routes are open", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  {
    await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)], [`api_keys: [${CLIENT}]`]));
    assert.equal((await call(`${proxy.url}/stats`)).status, 401);
    assert.equal((await call(`${proxy.url}/stats`, { headers: bearer(CLIENT) })).status, 200);
  }
  {
    await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)], [`admin_keys: [${ADMIN}]`]));
    assert.equal(
      (await call(`${proxy.url}/v1/chat/completions`, { method: "POST", body: chatBody })).status,
      200,
    );
    assert.equal((await call(`${proxy.url}/metrics`)).status, 401);
    assert.equal((await call(`${proxy.url}/metrics`, { headers: bearer(ADMIN) })).status, 200);
  }
  {
    await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)]));
    assert.equal((await call(`${proxy.url}/stats`)).status, 200, "no keys: everything is open");
    assert.equal((await call(`${proxy.url}/metrics`)).status, 200);
  }
});
