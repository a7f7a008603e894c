/**
 * Per-key governance on realtime sessions. A browser, which cannot set headers on a WebSocket, passes its key as the
 * `openai-insecure-api-key.KEY` subprotocol (OpenAI's way): the proxy takes it, never logs it and never offers it
 * upstream. A session is charged at the upgrade like one request (rpm, budgets, a place among max_parallel held
 * until it ends), and a refused one gets the OpenAI-shaped 429 on its handshake before any upstream socket opens.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, startProxy } from "../_support/proxy.ts";
import { minuteClock } from "../_support/minute_clock.ts";
import { test } from "../_support/test.ts";
import { refusedUpgrade } from "../_support/upgrade.ts";

const WEB_KEY = "sk-browser-7f3a91c2";
const LIMITED_KEY = "sk-realtime-limited-51d0";
const ws = (url: string) => url.replace(/^http/, "ws");

/** A browser-style WebSocket (protocols only, no headers); resolves once open, rejects when refused. */
async function open(url: string, protocols: string[]) {
  const socket = new WebSocket(url, protocols);
  const messages: string[] = [];
  socket.onmessage = (event) => messages.push(event.data);
  const closed = new Promise<void>((resolve) => socket.onclose = () => resolve());
  try {
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error("refused"));
    });
  } catch (error) {
    await closed;
    throw error;
  }
  const first = async () => {
    for (let i = 0; i < 200 && messages.length === 0; i++) await delay(10);
    return JSON.parse(messages[0]);
  };
  return {
    socket,
    first,
    close: async () => {
      socket.close();
      await closed;
    },
  };
}

test(
  "realtime: a browser's key in the openai-insecure-api-key subprotocol is taken, never logged nor sent upstream",
  {
    timeout: 20_000,
  },
  async () => {
    await using sim = await SimUpstream.start({ name: "east", quiet: true });
    const yaml = [
      "model_groups:",
      "  - model_group: voice",
      "    models:",
      endpointYaml(sim.url, { name: "east", model: "gpt-realtime" }),
      "keys:",
      `  - {name: web, key: ${WEB_KEY}}`,
    ].join("\n") + "\n";
    await using proxy = await startProxy(yaml, { logLevel: "debug" });
    const url = ws(proxy.url) + "/v1/realtime?model=voice";

    const session = await open(url, [
      "realtime",
      `openai-insecure-api-key.${WEB_KEY}`,
      "openai-beta.realtime-v1",
    ]);
    assert.equal(
      session.socket.protocol,
      "realtime",
      "the proxy picks 'realtime', never the key's subprotocol",
    );
    assert.equal((await session.first()).type, "session.created");
    await session.close();

    const upstream = sim.requests.find((r) => r.path === "/v1/realtime")!;
    assert.equal(
      upstream.headers.authorization,
      "Bearer sk-test-east",
      "the endpoint's credentials go upstream",
    );
    assert.equal(
      upstream.headers["sec-websocket-protocol"],
      "realtime, openai-beta.realtime-v1",
      "the other subprotocols are offered upstream, the key's is not",
    );

    await assert.rejects(open(url, ["realtime", "openai-insecure-api-key.sk-wrong-key"]));
    await assert.rejects(open(url, ["realtime"]));
    // Only on a WebSocket upgrade: a plain request's Sec-WebSocket-Protocol is no key.
    const plain = await fetch(proxy.url + "/v1/models", {
      headers: { "sec-websocket-protocol": `openai-insecure-api-key.${WEB_KEY}` },
    });
    assert.equal(plain.status, 401);
    await plain.body?.cancel();
    assert.equal(sim.count("/realtime"), 1, "a refused browser opens no upstream session");
    const logs = proxy.logs.join("\n");
    assert.match(logs, /\/v1\/realtime/, "the sessions were logged");
    assert.doesNotMatch(logs, /sk-browser|insecure-api-key|sk-wrong/, "no key in the logs");
  },
);

test("realtime: a session counts against the key's rpm and holds a place among max_parallel until it ends", {
  timeout: 30_000,
}, async () => {
  await using sim = await SimUpstream.start({ name: "east", quiet: true });
  const yaml = [
    "model_groups:",
    "  - model_group: voice",
    "    models:",
    endpointYaml(sim.url, { name: "east", model: "gpt-realtime" }),
    "  - model_group: other",
    "    models:",
    endpointYaml(sim.url, { name: "other" }),
    "general_settings:",
    "  cache: false",
    "keys:",
    `  - {name: team, key: ${LIMITED_KEY}, rpm: 3, max_parallel: 1, models: [voice]}`,
  ].join("\n") + "\n";
  await using proxy = await startProxy(yaml, { clock: minuteClock() });
  const url = ws(proxy.url) + "/v1/realtime?model=voice";
  const protocols = ["realtime", `openai-insecure-api-key.${LIMITED_KEY}`];
  const auth = { authorization: `Bearer ${LIMITED_KEY}` };

  const first = await open(url, protocols);
  // While it is open, a second session of the key is over max_parallel: refused before any upstream socket.
  const parallel = await refusedUpgrade(proxy.url, "/v1/realtime?model=voice", auth);
  assert.equal(parallel.status, 429);
  assert.equal(parallel.body.error.code, "rate_limit_exceeded");
  assert.match(parallel.body.error.message, /max_parallel/);
  assert.equal(parallel.headers["retry-after"], "1");
  assert.equal(sim.count("/realtime"), 1);
  await first.close();
  // The place is given back when the session ends.
  let second;
  for (let i = 0; i < 100 && !second; i++) second = await open(url, protocols).catch(() => delay(20));
  assert.ok(second, "a new session opens once the first ended");
  await second.close();
  await delay(50);
  const third = await open(url, protocols);
  await third.close();
  // Three sessions this minute: the fourth is over rpm 3.
  const over = await refusedUpgrade(proxy.url, "/v1/realtime?model=voice", auth);
  assert.equal(over.status, 429);
  assert.equal(over.body.error.type, "rate_limit_error");
  assert.match(over.body.error.message, /rpm \(3 requests per minute\)/);
  assert.ok(Number(over.headers["retry-after"]) >= 1 && Number(over.headers["retry-after"]) <= 60);
  assert.equal(sim.count("/realtime"), 3, "refused sessions never reach the upstream");
  // A group the key may not use answers like one that does not exist.
  const forbidden = await refusedUpgrade(proxy.url, "/v1/realtime?model=other", auth);
  assert.equal(forbidden.status, 404);
  assert.equal(forbidden.body.error.code, "model_not_found");
  const metrics = await (await fetch(proxy.url + "/metrics", { headers: auth })).text();
  assert.match(metrics, /llmproxy_key_limited_total\{key="team",limit="rpm"\} 1/);
  assert.match(metrics, /llmproxy_key_limited_total\{key="team",limit="max_parallel"\} 1/);
});

test("realtime: a session keeps its place among max_parallel past the longest a request may take", {
  timeout: 20_000,
}, async () => {
  await using sim = await SimUpstream.start({ name: "east", quiet: true });
  const yaml = [
    "model_groups:",
    "  - model_group: voice",
    "    models:",
    endpointYaml(sim.url, { name: "east", model: "gpt-realtime" }),
    "general_settings:",
    // A request's place lapses after 1 s x 1 attempt + 2 s of waiting + 60 s.
    "  http_timeout: 1",
    "  num_retries: 0",
    "keys:",
    `  - {name: team, key: ${LIMITED_KEY}, max_parallel: 1}`,
  ].join("\n") + "\n";
  let offset = 0;
  const clock = { now: () => Date.now() + offset, sleep: (ms: number) => delay(ms) };
  await using proxy = await startProxy(yaml, { clock });
  const url = ws(proxy.url) + "/v1/realtime?model=voice";
  const session = await open(url, ["realtime", `openai-insecure-api-key.${LIMITED_KEY}`]);
  // Twenty minutes into the session, it still holds the key's only place.
  offset = 20 * 60_000;
  const second = await refusedUpgrade(proxy.url, "/v1/realtime?model=voice", {
    authorization: `Bearer ${LIMITED_KEY}`,
  });
  assert.equal(second.status, 429);
  assert.match(second.body.error.message, /max_parallel/);
  await session.close();
});
