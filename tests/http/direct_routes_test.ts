/**
 * The generation routes are served before Hono's router (direct_routes.ts) with Hono's semantics: the same
 * middleware and route, served once through Hono and once directly, give the same answers, and the middleware
 * around see the same `c.error` and `c.res`. Through the real proxy: only POSTs to the generation paths take the
 * direct path.
 */

import assert from "node:assert/strict";
import { Hono } from "hono";
import { directRoutes, type Fetch, requestPath } from "../../src/http/direct_routes.ts";
import type { Middleware, RequestContext } from "../../src/http/request_context.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

type CaseEnv = { Variables: { step: string } };

/** One app with a case chosen by the `x-case` header; `seen` gets what each middleware saw, in order. */
function build(direct: boolean, seen: string[]): Fetch {
  const app = new Hono<CaseEnv>();
  const when = (c: RequestContext<CaseEnv>, name: string) => c.req.header("x-case") === name;
  const outer: Middleware<CaseEnv> = async (c, next) => {
    c.set("step", "outer");
    await next();
    seen.push(`outer saw ${c.res.status} ${c.error?.message ?? "no error"} ${c.get("step")}`);
  };
  const inner: Middleware<CaseEnv> = async (c, next) => {
    await next();
    seen.push(`inner saw ${c.res.status} ${c.error?.message ?? "no error"}`);
    if (when(c, "inner fails after")) throw new Error("inner failed after the route");
  };
  const checks: Middleware<CaseEnv> = (c, next) => {
    if (when(c, "check refuses")) throw new Error("refused");
    return next();
  };
  const route = (c: RequestContext<CaseEnv>): Promise<Response> => {
    c.set("step", "route");
    if (when(c, "route fails")) return Promise.reject(new Error("route failed"));
    if (when(c, "route throws a string")) return Promise.reject("not an Error");
    return Promise.resolve(new Response(`answer to ${c.req.method} ${c.req.path}`, { status: 201 }));
  };
  const onError = (error: Error, c: RequestContext<CaseEnv>) =>
    new Response(`${error.message} at ${c.get("step")}`, { status: 500 });
  for (const middleware of [outer, inner, checks]) app.use(middleware);
  app.post("/v1/go", route);
  app.get("/v1/go", () => new Response("hono's own"));
  app.onError(onError);
  if (!direct) return (request) => app.fetch(request);
  const rest: Fetch = (request, info) => app.fetch(request, info);
  return directRoutes(rest, {
    around: [outer, inner],
    checks,
    routes: new Map([["/v1/go", route]]),
    onError,
  });
}

const CASES = ["ok", "check refuses", "route fails", "inner fails after", "route throws a string"];

test("a direct route answers as Hono's compose does, and its middleware see the same", async () => {
  for (const name of CASES) {
    const outcomes = [];
    for (const direct of [false, true]) {
      const seen: string[] = [];
      const fetch = build(direct, seen);
      const request = new Request("http://localhost/v1/go", { method: "POST", headers: { "x-case": name } });
      let answer: string;
      try {
        const response = await fetch(request);
        answer = `${response.status} ${await response.text()}`;
      } catch (error) {
        answer = `rejected with ${String(error)}`;
      }
      outcomes.push({ answer, seen });
    }
    assert.deepEqual(outcomes[1], outcomes[0], `case '${name}': direct ${JSON.stringify(outcomes[1])}`);
  }
  // Spot checks of what both said.
  const seen: string[] = [];
  const fetch = build(true, seen);
  const failed = await fetch(
    new Request("http://localhost/v1/go", { method: "POST", headers: { "x-case": "route fails" } }),
  );
  assert.equal(await failed.text(), "route failed at route");
  assert.deepEqual(seen, ["inner saw 500 route failed", "outer saw 500 route failed route"]);
  const after = await fetch(
    new Request("http://localhost/v1/go", { method: "POST", headers: { "x-case": "inner fails after" } }),
  );
  assert.equal(await after.text(), "inner failed after the route at route");
  // Another method, or another path, is Hono's.
  assert.equal(await (await fetch(new Request("http://localhost/v1/go"))).text(), "hono's own");
  const elsewhere = await fetch(new Request("http://localhost/v1/go/", { method: "POST" }));
  assert.equal(elsewhere.status, 404);
  await elsewhere.body?.cancel();
});

test("the proxy's generation paths: POSTs served directly, other methods still answered by Hono", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)]), { logLevel: "info" });
  const body = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] });
  for (const path of ["/v1/chat/completions", "/chat/completions", "/v1/chat/completion%73"]) {
    const response = await fetch(`${proxy.url}${path}`, {
      method: "POST",
      body,
      headers: { "x-request-id": "r-1" },
    });
    assert.equal(response.status, 200, path);
    assert.equal(response.headers.get("x-request-id"), "r-1");
    assert.equal((await response.json()).object, "chat.completion");
  }
  const embedded = await fetch(`${proxy.url}/embeddings`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", input: "hi" }),
  });
  assert.equal((await embedded.json()).object, "list");
  // An error of the route: the OpenAI envelope with the request id, logged once with the status.
  const missing = await fetch(`${proxy.url}/v1/responses`, {
    method: "POST",
    body: JSON.stringify({ model: "nope", input: "hi" }),
    headers: { "x-request-id": "r-2" },
  });
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("x-request-id"), "r-2");
  assert.equal((await missing.json()).error.code, "model_not_found");
  const logged = proxy.logs.map((line) => JSON.parse(line)).filter((line) => line.request_id === "r-2");
  assert.deepEqual(logged.map((line) => [line.msg, line.status]), [["request", 404]]);
  // GET is not a generation request: Hono's answer, as before.
  const get = await fetch(`${proxy.url}/v1/chat/completions`);
  assert.equal(get.status, 404);
  assert.match((await get.json()).error.message, /POST/);
});

test("a request's path as Hono's router reads it, when it has no percent-escape", () => {
  for (
    const url of [
      "http://localhost/v1/go",
      "http://h:8080/v1/go?x=1",
      "https://h/v1/go#frag",
      "http://[::1]:9/v1/go?a#b",
    ]
  ) {
    assert.equal(requestPath(url), "/v1/go", url);
  }
  assert.equal(requestPath("http://h/"), "/");
  assert.equal(requestPath("http://h/v1/g%6F"), "/v1/g%6F"); // not decoded: no direct route, Hono's to serve
});

test("Hono's routes load at the first request beyond generation; requests at once all wait for one load", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)]), { logLevel: "info" });
  const answers = await Promise.all(
    ["/health", "/v1/models", "/v1/models", "/nowhere"].map((path) => fetch(`${proxy.url}${path}`)),
  );
  assert.deepEqual(answers.map((answer) => answer.status), [200, 200, 200, 404]);
  const texts = await Promise.all(answers.map((answer) => answer.text()));
  assert.match(texts[1], /gpt-test/);
  assert.equal(texts[2], texts[1]);
});
