/** GET /metrics after real traffic: every series the issue lists, valid text format, bounded labels. */

import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/parse.ts";
import { LiveApp } from "../../src/live_app.ts";
import { createLogger } from "../../src/logger.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const chat = (url: string, content: string, extra: Record<string, unknown> = {}) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }], ...extra }),
  });

/** The value of one series line, or undefined when the series is absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("requests, upstream latency, TTFT, overhead, failovers, retries, cooldowns and waits are exposed", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using b = await SimUpstream.start({ name: "b", quiet: true });
  await using proxy = await startProxy(
    groupYaml(
      [endpointYaml(a.url, { name: "a", weight: 1 }), endpointYaml(b.url, { name: "b", weight: 1 })],
      [
        "max_wait_for_capacity: 2",
      ],
    ),
  );
  // a fails once: a failover to b, a retry, a cooldown of a.
  a.always({ kind: "status", status: 500 });
  for (let i = 0; i < 4; i++) await (await chat(proxy.url, `plain ${i}`)).body?.cancel();
  // A stream for time to first token.
  const stream = await chat(proxy.url, "streamed", { stream: true });
  await stream.text();
  // A caller error and an unknown route.
  await (await fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body: "{" })).body?.cancel();
  await (await fetch(`${proxy.url}/v1/unknown/${crypto.randomUUID()}`)).body?.cancel();

  const response = await fetch(`${proxy.url}/metrics`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await response.text();

  const G = 'group="gpt-test"';
  assert.equal(value(text, `llmproxy_requests_total{route="chat",${G},endpoint="b",status="200"}`), 5);
  assert.equal(value(text, `llmproxy_requests_total{route="chat",group="",endpoint="",status="400"}`), 1);
  assert.equal(value(text, `llmproxy_requests_total{route="other",group="",endpoint="",status="404"}`), 1);
  assert.equal(value(text, `llmproxy_failovers_total{${G},endpoint="a",reason="http_500"}`), 1);
  assert.equal(value(text, `llmproxy_retries_total{${G}}`), 1);
  assert.equal(value(text, `llmproxy_cooldowns_total{${G},endpoint="a",reason="failures"}`), 1);
  assert.equal(value(text, `llmproxy_endpoint_cooling_down{${G},endpoint="a"}`), 1);
  assert.equal(value(text, `llmproxy_endpoint_cooling_down{${G},endpoint="b"}`), 0);
  assert.equal(value(text, `llmproxy_upstream_latency_seconds_count{${G},endpoint="a"}`), 1);
  assert.equal(value(text, `llmproxy_upstream_latency_seconds_count{${G},endpoint="b"}`), 5);
  assert.equal(value(text, `llmproxy_time_to_first_token_seconds_count{${G},endpoint="b"}`), 1);
  assert.equal(
    value(text, `llmproxy_proxy_overhead_seconds_count{route="chat"}`),
    5,
    "only requests with a group",
  );
  assert.equal(value(text, `llmproxy_request_duration_seconds_count{route="chat"}`), 6);
  assert.equal(value(text, `llmproxy_store_up{kind="memory"}`), 1);
  // One kept-alive connection per endpoint carried every upstream call (1 to a, 5 to b).
  assert.equal(value(text, "llmproxy_upstream_connections_opened_total"), 2);
  assert.equal(value(text, "llmproxy_upstream_connections_idle"), 2);
  assert.equal(value(text, "llmproxy_requests_in_flight"), 1, "the scrape itself is in flight");
  const overhead = value(text, `llmproxy_proxy_overhead_seconds_sum{route="chat"}`)!;
  const total = value(text, `llmproxy_request_duration_seconds_sum{route="chat"}`)!;
  assert.ok(overhead >= 0 && overhead < total, `overhead ${overhead} < total ${total}`);

  // Text format: HELP/TYPE comments, then `name{labels} number`; every series is llmproxy_ prefixed.
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("#")) {
      assert.match(line, /^# (HELP|TYPE) llmproxy_[a-z_]+ /);
      continue;
    }
    assert.match(line, /^llmproxy_[a-z_]+(\{([a-z_]+="[^"]*",?)+\})? (-?[0-9.e+-]+|\+Inf|NaN)$/, line);
  }
  assert.ok(!text.includes("plain 0") && !text.includes("unknown/"), "no request text in labels");
});

test("every series /metrics serves, and its type, is in README's Metrics section", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)]));
  await (await chat(proxy.url, "counted")).body?.cancel();
  const text = await (await fetch(`${proxy.url}/metrics`)).text();
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const section = readme.slice(readme.indexOf("\n## Metrics"), readme.indexOf("\n## Tracing"));
  const served = [...text.matchAll(/^# TYPE (\w+) (\w+)$/gm)].map(([, name, type]) => [name, type]);
  assert.ok(served.length > 20, text);
  const missing = served.filter(([name, type]) =>
    !new RegExp(`^\\| \`${name}\`\\s+\\| ${type} `, "m").test(section) &&
    // Per-key series are listed, with their labels, under "Usage and cost".
    !(name.startsWith("llmproxy_key_") && readme.includes(`\`${name}{`))
  );
  assert.deepEqual(missing, [], "series missing from README");
});

test("a wait for capacity after a 429 shows as a rate-limit cooldown, a wait and a retry", async () => {
  await using sim = await SimUpstream.start({ name: "only", quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url, { name: "only" })], ["max_wait_for_capacity: 2"]),
  );
  // A cooldown long enough to still run when the retry is planned (a 150 ms one had ended on a loaded machine, and
  // with it the wait: no capacity wait was counted).
  sim.next({ kind: "status", status: 429, headers: { "retry-after-ms": "1000" } });
  const response = await chat(proxy.url, "wait for me");
  assert.equal(response.status, 200);
  await response.body?.cancel();
  const text = await (await fetch(`${proxy.url}/v1/metrics`)).text();
  const G = 'group="gpt-test"';
  assert.equal(value(text, `llmproxy_capacity_wait_seconds_count{${G}}`), 1);
  assert.ok(value(text, `llmproxy_capacity_wait_seconds_sum{${G}}`)! >= 0.1);
  assert.equal(value(text, `llmproxy_cooldowns_total{${G},endpoint="only",reason="rate_limit"}`), 1);
  assert.equal(value(text, `llmproxy_failovers_total{${G},endpoint="only",reason="http_429"}`), 1);
  assert.equal(value(text, `llmproxy_retries_total{${G}}`), 1);

  // The access log: one line for the request, with the wait taken out of the overhead.
  const line = proxy.logs.map((l) => JSON.parse(l)).find((l) =>
    l.msg === "request" && l.path === "/v1/chat/completions"
  );
  assert.ok(line, "an access-log line");
  assert.equal(line.status, 200);
  assert.equal(line.attempts, 2);
  assert.equal(line.endpoint, "only");
  assert.ok(line.latency_ms >= 100 && line.overhead_ms < line.latency_ms - 100, JSON.stringify(line));
  assert.ok(!proxy.logs.join("\n").includes("wait for me"), "no request text in the logs");
});

test("before any traffic, counters of known label values are 0 series; a reload forgets only stale zeros", async () => {
  await using a = await SimUpstream.start({ name: "a", quiet: true });
  await using failing = await SimUpstream.start({ name: "b", quiet: true });
  failing.always({ kind: "status", status: 500 });
  const yaml = (second: string) =>
    groupYaml(
      [endpointYaml(a.url, { name: "a" }), endpointYaml(failing.url, { name: second, weight: 1000 })],
      ["cache: true"],
    );
  const live = await LiveApp.start(parseConfig(yaml("b"), "test.yaml", () => undefined), {
    logger: createLogger({ level: "error", write: () => {} }),
  });
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, live.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  const scrape = async () => await (await fetch(`${url}/metrics`)).text();
  const lines = (text: string, prefix: string) => text.split("\n").filter((line) => line.startsWith(prefix));
  try {
    const before = await scrape();
    for (const endpoint of ["a", "b"]) {
      for (const reason of ["http_429", "http_500", "http_5xx", "timeout", "connection", "content_filter"]) {
        const series = `llmproxy_failovers_total{group="gpt-test",endpoint="${endpoint}",reason="${reason}"}`;
        assert.equal(value(before, series), 0, series);
      }
      for (const reason of ["failures", "rate_limit"]) {
        const series = `llmproxy_cooldowns_total{group="gpt-test",endpoint="${endpoint}",reason="${reason}"}`;
        assert.equal(value(before, series), 0, series);
      }
    }
    assert.equal(value(before, `llmproxy_retries_total{group="gpt-test"}`), 0);
    for (const route of ["chat", "responses", "embeddings"]) {
      for (const result of ["hit", "miss", "coalesced", "bypass"]) {
        assert.equal(value(before, `llmproxy_cache_requests_total{route="${route}",result="${result}"}`), 0);
      }
    }
    for (const result of ["success", "failure"]) {
      assert.equal(value(before, `llmproxy_config_reloads_total{result="${result}"}`), 0);
    }
    // b fails a request over to a, then is renamed c: what b counted stays, its zeros go, c's come.
    const answer = await chat(url, "q");
    assert.equal(answer.status, 200);
    await answer.body?.cancel();
    const b = 'llmproxy_failovers_total{group="gpt-test",endpoint="b"';
    assert.equal(value(await scrape(), `${b},reason="http_500"}`), 1);
    assert.ok(await live.reload(() => Promise.resolve(parseConfig(yaml("c"), "test.yaml", () => undefined))));
    const after = await scrape();
    assert.deepEqual(lines(after, b), [`${b},reason="http_500"} 1`]);
    const c = 'llmproxy_failovers_total{group="gpt-test",endpoint="c"';
    assert.equal(lines(after, c).length, lines(before, b).length);
    assert.ok(lines(after, c).every((line) => line.endsWith(" 0")));
    assert.equal(value(after, `llmproxy_config_reloads_total{result="success"}`), 1);
    // Bounded: the same series as before the reload, plus what b counted.
    const all = (text: string) => lines(text, "llmproxy_failovers_total{").length;
    assert.equal(all(after), all(before) + 1);
  } finally {
    await server.shutdown();
    await live.close();
  }
});

test("before any refusal, each configured key's limits are 0 series of llmproxy_key_limited_total", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url, { name: "a" })]) +
      "keys:\n  - {name: team-a, key: sk-team-a-zero, rpm: 1, tokens_per_day: 1000}\n" +
      "  - {name: team-b, key: sk-team-b-zero}\n",
  );
  const scrape = async () =>
    await (await fetch(`${proxy.url}/metrics`, { headers: { authorization: "Bearer sk-team-a-zero" } }))
      .text();
  const limited = (text: string) =>
    text.split("\n").filter((line) => line.startsWith("llmproxy_key_limited_total{"));
  assert.deepEqual(limited(await scrape()).sort(), [
    'llmproxy_key_limited_total{key="team-a",limit="rpm"} 0',
    'llmproxy_key_limited_total{key="team-a",limit="tokens_per_day"} 0',
  ]);
  // The second request of the minute is refused: the series counts it.
  for (let i = 0; i < 2; i++) {
    const answer = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer sk-team-a-zero", "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(answer.status, i === 0 ? 200 : 429);
    await answer.body?.cancel();
  }
  assert.ok(limited(await scrape()).includes('llmproxy_key_limited_total{key="team-a",limit="rpm"} 1'));
});
