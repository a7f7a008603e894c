/**
 * The routes beyond generation load at the first request that needs them (app.ts, routes_app.ts): on a fresh app,
 * requests of every kind at once (generation POSTs served directly, streamed and not; a generation path with a
 * percent-escape, which only Hono's router reads; models, health, a 405 and a 404) each get the answer they got
 * with everything loaded at start, and a second wave too.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const chat = (stream: boolean) =>
  JSON.stringify({ model: "gpt-test", stream, messages: [{ role: "user", content: `lazy ${stream}` }] });

test("a fresh app: every kind of request at once, before and after the routes beyond generation loaded", async () => {
  await using sim = await SimUpstream.start({ quiet: true, chunks: 3 });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)]), { logLevel: "error" });
  const requests: [string, RequestInit, (response: Response, text: string) => void][] = [
    ["/v1/chat/completions", { method: "POST", body: chat(false) }, (r, t) => {
      assert.equal(r.status, 200);
      assert.match(t, /"chat.completion"/);
    }],
    ["/chat/completions", { method: "POST", body: chat(true) }, (r, t) => {
      assert.equal(r.status, 200);
      assert.match(r.headers.get("content-type") ?? "", /event-stream/);
      assert.ok(t.trimEnd().endsWith("data: [DONE]"), t);
    }],
    ["/v1/chat/complet%69ons", { method: "POST", body: chat(true) }, (r, t) => {
      assert.equal(r.status, 200, t);
      assert.ok(t.trimEnd().endsWith("data: [DONE]"), t);
      assert.ok(r.headers.get("x-request-id"));
    }],
    ["/v1/models", {}, (r, t) => {
      assert.equal(r.status, 200);
      assert.match(t, /gpt-test/);
    }],
    ["/health", {}, (r) => assert.equal(r.status, 200)],
    ["/v1/chat/completions", { method: "GET" }, (r, t) => {
      assert.ok(r.status === 404 || r.status === 405, `${r.status}`);
      assert.match(t, /POST/);
    }],
    ["/v1/nowhere", { method: "POST", body: "{}" }, (r, t) => {
      assert.equal(r.status, 404);
      assert.match(t, /"error"/);
    }],
  ];
  for (let wave = 0; wave < 2; wave++) {
    await Promise.all(requests.map(async ([path, init, check]) => {
      const response = await fetch(`${proxy.url}${path}`, {
        ...init,
        headers: init.body ? { "content-type": "application/json" } : {},
      });
      const text = await response.text();
      try {
        check(response, text);
      } catch (error) {
        throw new Error(
          `wave ${wave}, ${init.method ?? "GET"} ${path}: ${(error as Error).message}\n${text}`,
        );
      }
    }));
  }
});
