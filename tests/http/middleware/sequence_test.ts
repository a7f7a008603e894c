/**
 * The checks before a route (header size, key, request bodies in flight) run as one step of Hono's (sequence.ts):
 * each refusal still reaches the error renderer and the observing middleware, and bytes reserved for a body are
 * given back whatever the route answered.
 */

import assert from "node:assert/strict";
import { Hono } from "hono";
import { sequence } from "../../../src/http/middleware/sequence.ts";
import { SimUpstream } from "../../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../../_support/proxy.ts";
import { test } from "../../_support/test.ts";

const chat = (model: string, padding = 0) =>
  JSON.stringify({ model, messages: [{ role: "user", content: "hi" + " ".repeat(padding) }] });

test("each check's refusal is an OpenAI error with the request id, logged and counted", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url)], ["api_keys: [alpha-key]", "max_inflight_body_bytes: 1000"]),
    { logLevel: "info" },
  );
  const post = (headers: Record<string, string>, body: string) =>
    fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", headers, body });
  const key = { authorization: "Bearer alpha-key" };
  const cases: [Response, number, string][] = [
    [
      await post({ ...key, "x-big": "b".repeat(40_000) }, chat("gpt-test")),
      431,
      "request_header_fields_too_large",
    ],
    [await post({}, chat("gpt-test")), 401, "invalid_api_key"],
    // Larger than the whole bound of bodies held at once: no retry can pass.
    [await post(key, chat("gpt-test", 2000)), 413, "request_too_large"],
  ];
  for (const [response, status, code] of cases) {
    assert.equal(response.status, status);
    assert.ok(response.headers.get("x-request-id"), `${status} carries a request id`);
    assert.equal((await response.json()).error.code, code);
  }
  const ok = await post(key, chat("gpt-test"));
  assert.equal(ok.status, 200);
  await ok.body?.cancel();

  const logged = proxy.logs.map((line) => JSON.parse(line)).filter((line) => line.msg === "request");
  assert.deepEqual(logged.map((line) => line.status), [431, 401, 413, 200]);
  const metrics = await (await fetch(`${proxy.url}/metrics`, { headers: key })).text();
  for (const status of [431, 401, 413, 200]) {
    assert.match(metrics, new RegExp(`llmproxy_requests_total\\{[^}]*status="${status}"\\} 1`));
  }
});

test("bytes reserved for a body are given back after any answer of the route", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)], ["max_inflight_body_bytes: 1000"]));
  // Each body takes more than half the budget: a reservation kept by an earlier request refuses the next one.
  for (const model of ["no-such-group", "gpt-test", "no-such-group", "gpt-test"]) {
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      body: chat(model, 600),
    });
    assert.equal(response.status, model === "gpt-test" ? 200 : 404);
    await response.body?.cancel();
  }
});

test("middleware run in order, each around the next; a refusal skips the rest and the route", async () => {
  const seen: string[] = [];
  const app = new Hono();
  app.onError((error) => new Response(error.message, { status: 418 }));
  app.use(sequence(
    (_c, next) => {
      seen.push("first");
      return next();
    },
    async (c, next) => {
      seen.push("second");
      if (c.req.header("x-refuse")) throw new Error("refused");
      try {
        await next();
      } finally {
        seen.push("second done");
      }
    },
  ));
  app.get("/", (c) => {
    seen.push("route");
    return c.text("ok");
  });
  const passed = await app.request("/");
  assert.equal(await passed.text(), "ok");
  assert.deepEqual(seen.splice(0), ["first", "second", "route", "second done"]);
  const refused = await app.request("/", { headers: { "x-refuse": "1" } });
  assert.equal(refused.status, 418);
  assert.equal(await refused.text(), "refused");
  assert.deepEqual(seen, ["first", "second"]);
});
