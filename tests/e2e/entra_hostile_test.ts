/**
 * Entra ID against a token endpoint that misbehaves, through the real proxy: odd and absurd lifetimes, an answer
 * that never ends, a 429 with `Retry-After`, and a token the Azure endpoint rejects (401) long before it expires.
 * The proxy's clock is moved by the tests (token ages, back-offs, cooldowns) instead of waiting.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/parse.ts";
import { LiveApp } from "../../src/live_app.ts";
import { createLogger } from "../../src/logger.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { chat, entraConfig, movableClock } from "../_support/entra_proxy.ts";
import { startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";
import { startTokenServer, type TokenServer } from "../_support/token_server.ts";

const SECRET = "entra-secret-value-4c1d";

const config = (tokens: TokenServer, ptu: string, payg?: string, ptuParams: string[] = []) =>
  entraConfig(tokens, SECRET, ptu, payg, ptuParams);

test("token lifetimes: an absurd expires_in is capped and served; a missing, negative or unreadable one is a clear failure", async () => {
  await using tokens = startTokenServer();
  await using sim = await SimUpstream.start({ name: "ptu", quiet: true });
  const cases: [unknown, number][] = [
    [{ access_token: "T", expires_in: 1e20 }, 200],
    [{ access_token: "T", expires_in: "1e300" }, 200],
    [{ access_token: "T", expires_on: 1e18 }, 200],
    [{ access_token: "T" }, 503],
    [{ access_token: "T", expires_in: -5 }, 503],
    [{ access_token: 7, expires_in: 3600 }, 503],
    ["{not json", 503],
  ];
  for (const [body, status] of cases) {
    tokens.reply = (issued) =>
      new Response(typeof body === "string" ? body : JSON.stringify(body).replace('"T"', `"tok-${issued}"`));
    await using proxy = await startProxy(config(tokens, sim.url));
    const answer = await chat(proxy.url);
    assert.equal(answer.status, status, `${JSON.stringify(body)}: ${answer.text}`);
    if (status === 503) {
      assert.match(
        answer.text,
        /Entra ID token unavailable: HTTP 200 without an access_token and its lifetime/,
      );
    }
  }
});

test("a token answer that never ends is given up after 64 KiB: the request moves on at once", async () => {
  await using tokens = startTokenServer();
  await using ptu = await SimUpstream.start({ name: "ptu", quiet: true });
  await using payg = await SimUpstream.start({ name: "payg", quiet: true });
  let sent = 0;
  tokens.reply = () => {
    const chunk = new TextEncoder().encode(`{"access_token":"${"x".repeat(16 * 1024)}`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    return new Response(
      new ReadableStream<Uint8Array>({
        pull: (controller) =>
          new Promise<void>((resolve) => {
            timer = setTimeout(() => {
              sent += chunk.byteLength;
              controller.enqueue(chunk);
              resolve();
            }, 20);
          }),
        cancel: () => clearTimeout(timer),
      }),
      { headers: { "content-type": "application/json" } },
    );
  };
  await using proxy = await startProxy(config(tokens, ptu.url, payg.url));
  const started = Date.now();
  const answer = await chat(proxy.url);
  const took = Date.now() - started;
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.endpoint, "payg");
  assert.ok(took < 3000, `the request waited ${took} ms on the token endpoint`);
  const line = proxy.logs.find((l) => l.includes("Entra ID token request failed"));
  assert.match(line ?? "", /HTTP 200 with an answer over 65536 bytes/);
  assert.ok(sent < 1024 * 1024, `${sent} bytes sent`);
});

test("a 429 from the token endpoint: its Retry-After is kept (up to a minute), then it is asked again", async () => {
  await using tokens = startTokenServer();
  await using ptu = await SimUpstream.start({ name: "ptu", quiet: true });
  await using payg = await SimUpstream.start({ name: "payg", quiet: true });
  tokens.reply = () =>
    Response.json({ error: "temporarily_unavailable", error_description: "AADSTS50196: loop detected" }, {
      status: 429,
      headers: { "retry-after": "20" },
    });
  const clock = movableClock();
  await using proxy = await startProxy(config(tokens, ptu.url, payg.url), { clock });
  const first = await chat(proxy.url);
  assert.equal(first.endpoint, "payg", first.text);
  assert.equal(tokens.calls.length, 1);
  assert.match(
    proxy.logs.find((l) => l.includes("token request failed")) ?? "",
    /HTTP 429 temporarily_unavailable/,
  );
  clock.skip(5_000);
  assert.equal((await chat(proxy.url)).endpoint, "payg");
  assert.equal(tokens.calls.length, 1, "asked again within its Retry-After");
  tokens.reply = undefined;
  clock.skip(16_000);
  const later = await chat(proxy.url);
  assert.equal(later.endpoint, "ptu", later.text);
  assert.equal(tokens.calls.length, 2);
  assert.equal(ptu.last?.headers.authorization, "Bearer tok-2");
});

test("a token the endpoint rejects with 401 mid-life is dropped (once it is 30 s old) and a new one fetched", async () => {
  await using tokens = startTokenServer();
  await using ptu = await SimUpstream.start({ name: "ptu", quiet: true });
  await using payg = await SimUpstream.start({ name: "payg", quiet: true });
  const clock = movableClock();
  await using proxy = await startProxy(config(tokens, ptu.url, payg.url), { clock });
  assert.equal((await chat(proxy.url)).endpoint, "ptu");
  assert.equal(ptu.last?.headers.authorization, "Bearer tok-1");
  // Ten minutes later (the token lives an hour): the deployment's identity changed, and tok-1 is refused.
  clock.skip(600_000);
  ptu.next({ kind: "status", status: 401 });
  const refused = await chat(proxy.url);
  assert.equal(refused.status, 200, refused.text);
  assert.equal(refused.endpoint, "payg");
  const again = await chat(proxy.url);
  assert.equal(again.endpoint, "ptu", again.text);
  assert.equal(ptu.last?.headers.authorization, "Bearer tok-2");
  assert.equal(tokens.calls.length, 2);
  // A fresh token refused at once is kept (no token request per 401): at most one per 30 s.
  ptu.next({ kind: "status", status: 401 }, { kind: "status", status: 401 });
  await chat(proxy.url);
  await chat(proxy.url);
  assert.equal(tokens.calls.length, 2);
  const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
  const stats = await (await fetch(`${proxy.url}/stats`)).text();
  for (const text of [proxy.logs.join("\n"), metrics, stats]) {
    assert.ok(!text.includes(SECRET) && !text.includes("tok-"), "no secret or token shown");
  }
});

test("a token that expired while idle: 50 requests at once share one token request", async () => {
  await using tokens = startTokenServer();
  await using ptu = await SimUpstream.start({ name: "ptu", quiet: true });
  const clock = movableClock();
  await using proxy = await startProxy(config(tokens, ptu.url), { clock });
  assert.equal((await chat(proxy.url)).status, 200);
  clock.skip(3_700_000);
  tokens.delayMs = 200;
  const answers = await Promise.all(Array.from({ length: 50 }, () => chat(proxy.url)));
  assert.deepEqual(new Set(answers.map((answer) => answer.status)), new Set([200]));
  assert.equal(tokens.calls.length, 2);
  assert.equal(ptu.last?.headers.authorization, "Bearer tok-2");
});

test("a reload that changes the client secret fetches a token with the new one", async () => {
  await using tokens = startTokenServer();
  await using ptu = await SimUpstream.start({ name: "ptu", quiet: true });
  const before = config(tokens, ptu.url);
  const live = await LiveApp.start(parseConfig(before, "test.yaml", () => undefined), {
    logger: createLogger({ level: "error", write: () => {} }),
  });
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, live.fetch);
  try {
    const url = `http://127.0.0.1:${server.addr.port}`;
    assert.equal((await chat(url)).status, 200);
    const after = before.replace(SECRET, "rotated-secret-77");
    assert.ok(await live.reload(() => Promise.resolve(parseConfig(after, "test.yaml", () => undefined))));
    assert.equal((await chat(url)).status, 200);
    assert.deepEqual(tokens.calls.map((call) => call.params.client_secret), [SECRET, "rotated-secret-77"]);
    assert.equal(ptu.last?.headers.authorization, "Bearer tok-2");
  } finally {
    await live.close();
  }
});

test("a token endpoint slower than the endpoint's timeout: the request moves on after that timeout", async () => {
  await using tokens = startTokenServer();
  await using ptu = await SimUpstream.start({ name: "ptu", quiet: true });
  await using payg = await SimUpstream.start({ name: "payg", quiet: true });
  tokens.delayMs = 4_000;
  await using proxy = await startProxy(config(tokens, ptu.url, payg.url, ["timeout: 1"]));
  const started = Date.now();
  const answer = await chat(proxy.url);
  const took = Date.now() - started;
  assert.equal(answer.endpoint, "payg", answer.text);
  assert.ok(took < 3_000, `the request waited ${took} ms for a token`);
  // The token request went on: once it is answered, the endpoint serves with it.
  tokens.delayMs = 0;
  let next = await chat(proxy.url);
  while (next.endpoint !== "ptu" && Date.now() - started < 8_000) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    next = await chat(proxy.url);
  }
  assert.equal(next.endpoint, "ptu", next.text);
  assert.equal(ptu.last?.headers.authorization, "Bearer tok-1");
});
