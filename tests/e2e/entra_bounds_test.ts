/**
 * Entra ID's bounds through the real proxy: a token said to live a second is still asked for at most about twice
 * a minute under load, only a 429's or 503's `Retry-After` is heeded, a reload forgets a replaced credential's
 * token, and a realtime handshake refused with 401 drops the token as an HTTP 401 does.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/parse.ts";
import { LiveApp } from "../../src/live_app.ts";
import { createLogger } from "../../src/logger.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { chat, entraConfig, movableClock } from "../_support/entra_proxy.ts";
import { startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";
import { startTokenServer } from "../_support/token_server.ts";

const SECRET = "entra-secret-value-b0a7";

test("a token said to live one second: 400 requests over 40 s of clock ask the token endpoint twice, not per request", async () => {
  await using tokens = startTokenServer();
  await using ptu = await SimUpstream.start({ name: "ptu", quiet: true });
  tokens.lifetimeSeconds = 1;
  const clock = movableClock();
  await using proxy = await startProxy(entraConfig(tokens, SECRET, ptu.url), { clock });
  for (let second = 0; second < 40; second++) {
    const answers = await Promise.all(Array.from({ length: 10 }, () => chat(proxy.url)));
    assert.deepEqual(answers.map((answer) => answer.status), Array(10).fill(200), answers[0].text);
    clock.skip(1_000);
  }
  // Used 30 s (refreshed in the background from 27 s on): tok-1, then tok-2.
  assert.equal(tokens.calls.length, 2);
  assert.equal(ptu.last?.headers.authorization, "Bearer tok-2");
});

test("Retry-After is heeded on a token endpoint's 503, not on a 500 (the usual 2 s back-off)", async () => {
  await using tokens = startTokenServer();
  await using ptu = await SimUpstream.start({ name: "ptu", quiet: true });
  await using payg = await SimUpstream.start({ name: "payg", quiet: true });
  const clock = movableClock();
  await using proxy = await startProxy(entraConfig(tokens, SECRET, ptu.url, payg.url), { clock });
  for (const [status, askedAgainAfter] of [[500, 2_000], [503, 20_000]]) {
    const before = tokens.calls.length;
    tokens.reply = () =>
      Response.json({ error: "temporarily_unavailable" }, { status, headers: { "retry-after": "20" } });
    assert.equal((await chat(proxy.url)).endpoint, "payg");
    assert.equal(tokens.calls.length, before + 1);
    tokens.reply = undefined;
    clock.skip(askedAgainAfter - 1_000);
    assert.equal((await chat(proxy.url)).endpoint, "payg", `${status}: asked again within its back-off`);
    assert.equal(tokens.calls.length, before + 1);
    clock.skip(1_000);
    assert.equal((await chat(proxy.url)).endpoint, "ptu", `${status}: asked again after its back-off`);
    assert.equal(tokens.calls.length, before + 2);
    clock.skip(3_700_000);
  }
});

test("a reload forgets a replaced secret's token: a reload back to that secret asks for a new token with it", async () => {
  await using tokens = startTokenServer();
  await using ptu = await SimUpstream.start({ name: "ptu", quiet: true });
  const first = entraConfig(tokens, SECRET, ptu.url);
  const load = (yaml: string) => () => Promise.resolve(parseConfig(yaml, "test.yaml", () => undefined));
  const live = await LiveApp.start(await load(first)(), {
    logger: createLogger({ level: "error", write: () => {} }),
  });
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, live.fetch);
  try {
    const url = `http://127.0.0.1:${server.addr.port}`;
    assert.equal((await chat(url)).status, 200);
    assert.ok(await live.reload(load(first.replace(SECRET, "rotated-secret-5"))));
    assert.equal((await chat(url)).status, 200);
    assert.ok(await live.reload(load(first)));
    assert.equal((await chat(url)).status, 200);
    assert.deepEqual(tokens.calls.map((call) => call.params.client_secret), [
      SECRET,
      "rotated-secret-5",
      SECRET,
    ]);
    assert.equal(ptu.last?.headers.authorization, "Bearer tok-3");
  } finally {
    await live.close();
  }
});

/** Opens a realtime session through the proxy; resolves with whether the client's socket opened. */
async function session(url: string): Promise<boolean> {
  const socket = new WebSocket(`${url.replace(/^http/, "ws")}/v1/realtime?model=gpt-test`);
  const closed = new Promise((resolve) => socket.onclose = resolve);
  const opened = await new Promise<boolean>((resolve) => {
    socket.onopen = () => resolve(true);
    socket.onerror = () => resolve(false);
  });
  if (opened) socket.close();
  await closed;
  return opened;
}

test("realtime: a handshake refused with 401 drops a token older than 30 s; the next session gets a new one", async () => {
  await using tokens = startTokenServer();
  await using ptu = await SimUpstream.start({ name: "ptu", quiet: true });
  await using payg = await SimUpstream.start({ name: "payg", quiet: true });
  const clock = movableClock();
  await using proxy = await startProxy(entraConfig(tokens, SECRET, ptu.url, payg.url), { clock });
  assert.ok(await session(proxy.url));
  assert.equal(ptu.last?.headers.authorization, "Bearer tok-1");
  clock.skip(600_000);
  ptu.next({ kind: "status", status: 401 });
  assert.ok(await session(proxy.url));
  assert.equal(payg.count("/realtime"), 1, "the refused handshake failed over");
  assert.ok(await session(proxy.url));
  assert.equal(ptu.last?.headers.authorization, "Bearer tok-2");
  assert.equal(tokens.calls.length, 2);
  // A fresh token refused is kept: at most one token request per 30 s, as on HTTP.
  ptu.next({ kind: "status", status: 401 }, { kind: "status", status: 401 });
  assert.ok(await session(proxy.url));
  assert.ok(await session(proxy.url));
  assert.equal(tokens.calls.length, 2);
  const stats = await (await fetch(`${proxy.url}/stats`)).json();
  assert.equal(stats.endpoints.find((e: { id: string }) => e.id === "ptu").failures, 3);
});
