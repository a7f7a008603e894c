/** The observing middleware on its own: what it reads from the route, what it logs and counts. */

import assert from "node:assert/strict";
import { Hono } from "hono";
import { observe } from "../../../src/http/middleware/observe.ts";
import { createLogger } from "../../../src/logger.ts";
import { ProxyMetrics, type RequestTrace } from "../../../src/metrics/metrics.ts";
import { test } from "../../_support/test.ts";

type Env = { Variables: { requestId: string; group: string; trace: RequestTrace } };

function setup() {
  const lines: string[] = [];
  const metrics = new ProxyMetrics();
  let clock = 1000;
  const app = new Hono<Env>();
  app.use(
    observe({
      metrics,
      logger: createLogger({ level: "info", write: (line) => lines.push(line) }),
      now: () => clock,
      generateId: () => "req-1",
    }),
  );
  app.post("/v1/chat/completions", (c) => {
    c.set("group", "gpt-test");
    // 40 ms in total, 30 of them upstream and 5 waiting for capacity.
    c.get("trace").upstreamMs += 30;
    c.get("trace").waitMs += 5;
    clock += 40;
    return c.json({ ok: true }, 200, {
      "x-llmproxy-endpoint": "east",
      "x-llmproxy-attempts": "2",
      "x-llmproxy-cache": "MISS",
    });
  });
  // A route whose answer was built by a layer that traced it (as the pipeline and the cache do).
  app.post("/v1/embeddings", (c) => {
    c.set("group", "gpt-test");
    c.get("trace").served = { endpoint: "west", attempts: 1, cache: "HIT" };
    return c.json({ ok: true }, 200, { "x-request-id": c.get("requestId") });
  });
  // A layer traced an answer, then the request failed after all: the error handler's answer is what is logged.
  app.post("/v1/responses", (c) => {
    c.set("group", "gpt-test");
    c.get("trace").served = { endpoint: "west", attempts: 1, cache: "COALESCED" };
    throw new Error("failed after the trace was written");
  });
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.onError((_error, c) => c.json({ error: { message: "failed" } }, 500));
  return { app, lines, metrics };
}

const render = (metrics: ProxyMetrics) =>
  metrics.render({
    storeKind: "memory",
    storeUp: true,
    coolingDown: [],
    upstreamConnections: { opened: 0, idle: 0 },
  });

test("one access-log line per request with group, endpoint, attempts, cache, latency and overhead", async () => {
  const { app, lines, metrics } = setup();
  const response = await app.request("/v1/chat/completions?secret=1", { method: "POST", body: "{}" });
  await response.body?.cancel();
  assert.equal(lines.length, 1);
  const line = JSON.parse(lines[0]);
  assert.equal(line.level, "info");
  assert.equal(line.msg, "request");
  assert.deepEqual(
    {
      request_id: line.request_id,
      method: line.method,
      path: line.path,
      group: line.group,
      endpoint: line.endpoint,
      status: line.status,
      attempts: line.attempts,
      cache: line.cache,
      latency_ms: line.latency_ms,
      upstream_ms: line.upstream_ms,
      overhead_ms: line.overhead_ms,
    },
    {
      request_id: "req-1",
      method: "POST",
      path: "/v1/chat/completions",
      group: "gpt-test",
      endpoint: "east",
      status: 200,
      attempts: 2,
      cache: "MISS",
      latency_ms: 40,
      upstream_ms: 30,
      overhead_ms: 5,
    },
  );
  const text = render(metrics);
  assert.match(
    text,
    /llmproxy_requests_total\{route="chat",group="gpt-test",endpoint="east",status="200"\} 1/,
  );
  assert.match(text, /llmproxy_cache_requests_total\{route="chat",result="miss"\} 1/);
  assert.match(text, /llmproxy_proxy_overhead_seconds_sum\{route="chat"\} 0\.005/);
  assert.match(text, /llmproxy_request_duration_seconds_sum\{route="chat"\} 0\.04/);
});

test("a traced answer is logged from its trace; every answer carries the request id, a sane given one echoed", async () => {
  const { app, lines } = setup();
  const traced = await app.request("/v1/embeddings", {
    method: "POST",
    headers: { "x-request-id": "client-7" },
  });
  await traced.body?.cancel();
  const line = JSON.parse(lines[0]);
  assert.deepEqual([line.request_id, line.endpoint, line.attempts, line.cache], [
    "client-7",
    "west",
    1,
    "HIT",
  ]);
  const failed = await app.request("/v1/responses", { method: "POST" });
  await failed.body?.cancel();
  assert.equal(failed.status, 500);
  assert.equal(failed.headers.get("x-request-id"), "req-1", "the error answer carries the id too");
  const failedLine = JSON.parse(lines[1]);
  assert.deepEqual([failedLine.status, failedLine.endpoint, failedLine.cache], [500, null, null]);
  for (const given of [undefined, "bad id with spaces", "x".repeat(200)]) {
    const response = await app.request("/health", { headers: given ? { "x-request-id": given } : {} });
    await response.body?.cancel();
    assert.equal(response.headers.get("x-request-id"), "req-1", `given ${given}`);
  }
});

test("unknown routes and errors are counted under fixed labels; /health logs at debug only", async () => {
  const { app, lines, metrics } = setup();
  for (const path of ["/v1/some/user/text", "/v1/another"]) {
    const response = await app.request(path);
    await response.body?.cancel();
  }
  const health = await app.request("/health");
  await health.body?.cancel();
  assert.equal(lines.length, 2, "the /health probe is not logged at info");
  assert.equal(JSON.parse(lines[0]).group, null);
  assert.equal(JSON.parse(lines[0]).overhead_ms, null);
  const text = render(metrics);
  assert.match(text, /llmproxy_requests_total\{route="other",group="",endpoint="",status="404"\} 2/);
  assert.ok(!text.includes("user/text"));
  assert.match(text, /llmproxy_requests_in_flight 0/);
});
