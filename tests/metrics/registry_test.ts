/** The exposition writer: Prometheus text format, cumulative histogram buckets, escaping, bounded label lists. */

import assert from "node:assert/strict";
import { Counter, Gauge, Histogram, Registry } from "../../src/metrics/registry.ts";
import { failoverReason, ProxyMetrics, routeLabel } from "../../src/metrics/metrics.ts";
import { test } from "../_support/test.ts";

test("counters, gauges and histograms render in the text format", () => {
  const registry = new Registry();
  const requests = registry.register(new Counter("t_requests_total", "Requests", ["route", "status"]));
  const inFlight = registry.register(new Gauge("t_in_flight", "In flight"));
  const latency = registry.register(new Histogram("t_latency_seconds", "Latency", ["route"], [0.1, 1]));
  requests.inc(["chat", 200]);
  requests.inc(["chat", 200]);
  requests.labels("chat", 503).value += 3;
  inFlight.set([], 2);
  latency.observe(["chat"], 0.05);
  latency.observe(["chat"], 0.1);
  latency.observe(["chat"], 0.5);
  latency.observe(["chat"], 7);
  assert.equal(
    registry.render(),
    [
      "# HELP t_requests_total Requests",
      "# TYPE t_requests_total counter",
      't_requests_total{route="chat",status="200"} 2',
      't_requests_total{route="chat",status="503"} 3',
      "# HELP t_in_flight In flight",
      "# TYPE t_in_flight gauge",
      "t_in_flight 2",
      "# HELP t_latency_seconds Latency",
      "# TYPE t_latency_seconds histogram",
      't_latency_seconds_bucket{route="chat",le="0.1"} 2',
      't_latency_seconds_bucket{route="chat",le="1"} 3',
      't_latency_seconds_bucket{route="chat",le="+Inf"} 4',
      't_latency_seconds_sum{route="chat"} 7.65',
      't_latency_seconds_count{route="chat"} 4',
      "",
    ].join("\n"),
  );
});

test("label values are escaped; wrong label counts and bad names are refused", () => {
  const registry = new Registry();
  const counter = registry.register(new Counter("t_total", "With \\ and\nnewline", ["name"]));
  counter.inc(['a"b\\c\nd']);
  const text = registry.render();
  assert.match(text, /# HELP t_total With \\\\ and\\nnewline/);
  assert.ok(text.includes('t_total{name="a\\"b\\\\c\\nd"} 1'));
  assert.throws(() => counter.inc(["a", "b"]), RangeError);
  assert.throws(() => new Counter("bad-name", "x"));
  assert.throws(() => new Counter("t_x", "x", ["le"]));
  assert.throws(() => registry.register(new Counter("t_total", "again")), /twice/);
  assert.throws(() => new Histogram("t_h", "x", [], [1, 1]), /ascending/);
});

test("a series found once is the same object: recording allocates nothing new", () => {
  const counter = new Counter("t_total", "x", ["a", "b"]);
  assert.equal(counter.labels("x", 1), counter.labels("x", 1));
  assert.notEqual(counter.labels("x", 1), counter.labels("x", 2));
  assert.equal(counter.get("x", 1), 0);
});

test("route labels and failover reasons come from fixed sets", () => {
  assert.equal(routeLabel("/v1/chat/completions"), "chat");
  assert.equal(routeLabel("/chat/completions"), "chat");
  assert.equal(routeLabel("/v1/responses/resp_123/input_items"), "responses_item");
  assert.equal(routeLabel("/v1/metrics"), "metrics");
  assert.equal(routeLabel("/v1/sk-some-user-text"), "other");
  assert.equal(routeLabel("/ui/data"), "ui");
  assert.equal(failoverReason({ kind: "status", status: 429 }), "http_429");
  assert.equal(failoverReason({ kind: "status", status: 599 }), "http_5xx");
  assert.equal(failoverReason({ kind: "status", status: 302 }), "http_3xx");
  assert.equal(failoverReason({ kind: "timeout" }), "timeout");
});

test("ProxyMetrics maps unknown cache header values to 'other' and keeps in-flight balanced", () => {
  const metrics = new ProxyMetrics();
  metrics.requestStarted();
  metrics.request({
    route: "chat",
    group: "g",
    endpoint: "e",
    status: 200,
    cache: "weird-value",
    seconds: 0.2,
    overheadSeconds: 0.001,
  });
  const text = metrics.render({
    storeKind: "memory",
    storeUp: true,
    coolingDown: [],
    upstreamConnections: { opened: 0, idle: 0 },
  });
  assert.match(text, /llmproxy_cache_requests_total\{route="chat",result="other"\} 1/);
  assert.match(text, /llmproxy_requests_in_flight 0/);
  assert.ok(!text.includes("weird-value"));
  assert.match(text, /llmproxy_store_up\{kind="memory"\} 1/);
  assert.match(text, /llmproxy_build_info\{version="\d+\.\d+\.\d+"\} 1/);
});
