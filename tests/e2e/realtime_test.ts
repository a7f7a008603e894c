import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

/** A WebSocket (with Deno's headers option) whose messages, open and close can be awaited. */
function connect(url: string, headers: Record<string, string> = { authorization: "Bearer client-key" }) {
  const socket = new WebSocket(url, { headers });
  socket.binaryType = "arraybuffer";
  const messages: (string | ArrayBuffer)[] = [];
  const waiters: (() => void)[] = [];
  socket.onmessage = (event) => {
    messages.push(event.data);
    waiters.splice(0).forEach((wake) => wake());
  };
  const closed = new Promise<CloseEvent>((resolve) => socket.onclose = resolve);
  const opened = new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error("websocket failed"));
  });
  opened.catch(() => {});
  const message = async (count: number) => {
    while (messages.length < count) await new Promise<void>((wake) => waiters.push(wake));
    const data = messages[count - 1];
    return typeof data === "string" ? JSON.parse(data) : data;
  };
  return { socket, opened, closed, message };
}

const azure = "          provider: azure\n          api_version: 2025-04-01-preview";
const ws = (url: string) => url.replace(/^http/, "ws");

test("realtime: relayed both ways unchanged to OpenAI and Azure upstreams, either side's close closes the other", async () => {
  await using east = await SimUpstream.start({ name: "east", quiet: true, chunks: 2 });
  await using az = await SimUpstream.start({ name: "azure", quiet: true, chunks: 2 });
  await using proxy = await startProxy(groupYaml(
    [
      endpointYaml(east.url, { name: "east", model: "gpt-realtime" }),
      endpointYaml(az.url, { name: "azure", model: "rt-dep", extra: azure }),
    ],
    ["api_keys: [client-key]"],
    "voice",
  ));
  const seen = new Set<string>();
  for (let i = 0; i < 2; i++) {
    const client = connect(ws(proxy.url) + "/v1/realtime?model=voice");
    await client.opened;
    const created = await client.message(1);
    assert.equal(created.type, "session.created");
    seen.add(created.session.model);
    // JSON events and binary frames pass unchanged both ways.
    client.socket.send(JSON.stringify({ type: "input_audio_buffer.append", audio: "AAAA" }));
    assert.deepEqual((await client.message(2)).event, { type: "input_audio_buffer.append", audio: "AAAA" });
    client.socket.send(new Uint8Array([0, 255, 7]));
    assert.deepEqual(new Uint8Array(await client.message(3)), new Uint8Array([0, 255, 7]));
    const stats =
      await (await fetch(proxy.url + "/stats", { headers: { authorization: "Bearer client-key" } })).json();
    assert.equal(stats.realtime.open_sessions, 1);
    if (i === 0) {
      // The client closes: the upstream session ends too.
      client.socket.close(1000, "done");
      await client.closed;
      for (let t = 0; t < 100 && east.realtime.open + az.realtime.open > 0; t++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(east.realtime.open + az.realtime.open, 0);
    } else {
      // The upstream closes with its code and reason: the client sees the same.
      client.socket.send(JSON.stringify({ type: "sim.close", code: 4002, reason: "upstream done" }));
      const closed = await client.closed;
      assert.equal(closed.code, 4002);
      assert.equal(closed.reason, "upstream done");
    }
  }
  assert.deepEqual(
    [...seen].sort(),
    ["gpt-realtime", "rt-dep"],
    "both endpoints served, each with its own model",
  );
  const upstreamCall = az.requests.find((r) => r.path.includes("realtime"))!;
  assert.equal(upstreamCall.path, "/openai/realtime");
  assert.match(upstreamCall.search, /deployment=rt-dep/);
  assert.equal(upstreamCall.auth, "api-key");
  assert.equal(
    upstreamCall.headers["api-key"],
    "sk-test-azure",
    "the endpoint's credentials, not the client's",
  );
  assert.equal(
    east.requests.find((r) => r.path === "/v1/realtime")?.headers.authorization,
    "Bearer sk-test-east",
  );
  const stats = await (await fetch(proxy.url + "/stats", { headers: { authorization: "Bearer client-key" } }))
    .json();
  assert.deepEqual(stats.realtime, { open_sessions: 0, sessions: 2 });
});

test("realtime: a failing upstream handshake fails over before the client's socket opens; a bad key is refused", async () => {
  await using bad = await SimUpstream.start({ name: "bad", quiet: true });
  await using good = await SimUpstream.start({ name: "good", quiet: true });
  bad.always({ kind: "status", status: 500 });
  await using proxy = await startProxy(groupYaml(
    [
      endpointYaml(bad.url, { name: "bad", weight: 100 }),
      endpointYaml(good.url, {
        name: "good",
        extra: "          api_version: null\n          provider: azure",
      }),
    ],
    ["api_keys: [client-key]"],
  ));
  const client = connect(ws(proxy.url) + "/v1/realtime?model=gpt-test");
  await client.opened;
  assert.equal((await client.message(1)).type, "session.created");
  assert.equal(bad.count("/realtime"), 1);
  // Azure v1 layout: /openai/v1/realtime?model=deployment.
  assert.equal(good.requests.find((r) => r.path.includes("realtime"))?.path, "/openai/v1/realtime");
  const stats = await (await fetch(proxy.url + "/stats", { headers: { authorization: "Bearer client-key" } }))
    .json();
  assert.equal(stats.endpoints.find((e: { id: string }) => e.id === "bad").failures, 1);
  client.socket.close();
  await client.closed;
  const refused = connect(ws(proxy.url) + "/v1/realtime?model=gpt-test", { authorization: "Bearer wrong" });
  await assert.rejects(refused.opened);
  await refused.closed;
  assert.equal(good.count("/realtime"), 1, "no upstream session for a refused key");
  // Not an upgrade: a 426 in the OpenAI envelope.
  const plain = await fetch(proxy.url + "/v1/realtime?model=gpt-test", {
    headers: { authorization: "Bearer client-key" },
  });
  assert.equal(plain.status, 426);
  assert.equal((await plain.json()).error.code, "upgrade_required");
});

test("realtime: every endpoint failing its handshake leaves the client's socket unopened", async () => {
  await using down = await SimUpstream.start({ name: "down", quiet: true });
  down.always({ kind: "status", status: 503 });
  await using proxy = await startProxy(groupYaml([endpointYaml(down.url, { name: "down" })]));
  const client = connect(ws(proxy.url) + "/v1/realtime?model=gpt-test", {});
  await assert.rejects(client.opened);
  await client.closed;
  const stats = await (await fetch(proxy.url + "/stats")).json();
  assert.deepEqual(stats.realtime, { open_sessions: 0, sessions: 0 });
});

test("realtime: a handshake refused with a 4xx counts under the fixed, zero-initialised failover reasons", async () => {
  await using bad = await SimUpstream.start({ name: "bad", quiet: true });
  await using good = await SimUpstream.start({ name: "good", quiet: true });
  bad.always({ kind: "status", status: 400 });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(bad.url, { name: "bad", weight: 100 }),
    endpointYaml(good.url, { name: "good" }),
  ]));
  const series = async (reason: string) => {
    const text = await (await fetch(proxy.url + "/metrics")).text();
    const name = `llmproxy_failovers_total{group="gpt-test",endpoint="bad",reason="${reason}"} `;
    const line = text.split("\n").find((l) => l.startsWith(name));
    return line === undefined ? undefined : Number(line.slice(name.length));
  };
  // Every label a failover can take is there at 0 before any traffic.
  assert.equal(await series("http_4xx"), 0);
  assert.equal(await series("http_401"), 0);
  const client = connect(ws(proxy.url) + "/v1/realtime?model=gpt-test", {});
  await client.opened;
  assert.equal((await client.message(1)).type, "session.created");
  client.socket.close();
  await client.closed;
  assert.equal(bad.count("/realtime"), 1);
  assert.equal(await series("http_4xx"), 1);
  assert.equal(await series("connection"), 0);
});

test("realtime: a handshake answered 200 (a page, not the upgrade) counts as malformed, not as a 3xx", async () => {
  await using page = await SimUpstream.start({ name: "page", quiet: true });
  await using good = await SimUpstream.start({ name: "good", quiet: true });
  page.always({ kind: "status", status: 200, body: "<html>a web page</html>" });
  await using proxy = await startProxy(groupYaml([
    endpointYaml(page.url, { name: "page", weight: 100 }),
    endpointYaml(good.url, { name: "good" }),
  ]));
  const client = connect(ws(proxy.url) + "/v1/realtime?model=gpt-test", {});
  await client.opened;
  assert.equal((await client.message(1)).type, "session.created");
  client.socket.close();
  await client.closed;
  assert.equal(page.count("/realtime"), 1);
  const text = await (await fetch(proxy.url + "/metrics")).text();
  const failovers = text.split("\n").filter((line) =>
    line.startsWith('llmproxy_failovers_total{group="gpt-test",endpoint="page",') && !line.endsWith(" 0")
  );
  assert.deepEqual(failovers, [
    'llmproxy_failovers_total{group="gpt-test",endpoint="page",reason="malformed"} 1',
  ]);
});
