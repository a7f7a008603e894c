/**
 * OpenTelemetry end to end: the proxy runs as a process with Deno's OpenTelemetry on (`OTEL_DENO=true`, OTLP/HTTP
 * JSON to a receiver this test starts) and its own http1 upstream client. Spans arrive with the GenAI attributes,
 * a failover shows two attempt spans under one request span, a stream's span ends with the stream and carries its
 * usage, the GenAI histograms arrive, and no key, prompt or answer text is in anything exported.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";
import { attributes, type OtlpSpan, startReceiver, waitFor } from "../_support/otlp_receiver.ts";

const CLIENT_KEY = "sk-client-secret-for-tracing";
const PROMPT = "a prompt that must never be exported";

const chat = (url: string, content: string, extra: Record<string, unknown> = {}) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${CLIENT_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }], ...extra }),
  });

test("tracing: GenAI spans per request and attempt over OTLP/HTTP, failover, streams, metrics, no secrets", {
  timeout: 60_000,
}, async () => {
  await using primary = await SimUpstream.start({ name: "primary", quiet: true });
  await using fallback = await SimUpstream.start({ name: "fallback", quiet: true });
  const receiver = startReceiver();
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/llmproxy.yaml`;
    await Deno.writeTextFile(
      config,
      [
        "model_groups:",
        "  - model_group: gpt-test",
        "    models:",
        endpointYaml(primary.url, { name: "primary", weight: 1 }),
        endpointYaml(fallback.url, { name: "fallback", weight: 0 }),
        "general_settings:",
        "  cache: false",
        "keys:",
        "  - name: team-a",
        `    key: ${CLIENT_KEY}`,
      ].join("\n") + "\n",
    );
    await using proxy = await startProxyProcess(["--config", config, "--port", "0"], {
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_SERVICE_NAME: "llmproxy-test",
        OTEL_DENO_CONSOLE: "ignore",
        OTEL_METRIC_EXPORT_INTERVAL: "500",
      },
    });

    const plain = await chat(proxy.url, PROMPT);
    assert.equal(plain.status, 200);
    const plainId = (await plain.json()).id;

    primary.next({ kind: "status", status: 500 });
    const failedOver = await chat(proxy.url, PROMPT);
    assert.equal(failedOver.status, 200);
    assert.equal(failedOver.headers.get("x-llmproxy-endpoint"), "fallback");
    await failedOver.body?.cancel();

    const stream = await chat(proxy.url, PROMPT, { stream: true, stream_options: { include_usage: true } });
    const streamed = await stream.text();
    assert.ok(streamed.includes("[DONE]"));

    const requests = await waitFor("three request spans", () => {
      const found = receiver.spans().filter((span) => span.name === "chat gpt-test");
      return found.length >= 3 ? found : undefined;
    });
    const all = receiver.spans();
    const children = (parent: OtlpSpan) =>
      all.filter((span) => span.parentSpanId === parent.spanId && span.traceId === parent.traceId);
    // The proxy's own client carried the calls (with fetch, Deno would add spans of its own).
    assert.match(proxy.output(), /"upstream_client":"http1"/);
    assert.ok(
      !all.some((span) => span.name === "POST" && span.kind === 3),
      "a fetch span: the upstream client was fetch",
    );

    // 1. A plain request: GenAI attributes, usage, and one CLIENT attempt span with endpoint, status and TTFB.
    const first = requests.find((span) => attributes(span.attributes)["gen_ai.response.id"] === plainId);
    assert.ok(first, "the plain request's span");
    const one = attributes(first.attributes);
    assert.equal(one["gen_ai.operation.name"], "chat");
    assert.equal(one["gen_ai.request.model"], "gpt-test");
    assert.equal(one["gen_ai.response.model"], "upstream-model");
    assert.equal(one["gen_ai.provider.name"], "openai");
    assert.ok((one["gen_ai.usage.input_tokens"] as number) > 0);
    assert.ok((one["gen_ai.usage.output_tokens"] as number) > 0);
    assert.equal(one["llmproxy.endpoint"], "primary");
    assert.equal(one["llmproxy.key.name"], "team-a");
    assert.equal(one["http.response.status_code"], 200);
    const [attempt] = children(first);
    const a = attributes(attempt.attributes);
    assert.equal(attempt.kind, 3); // SPAN_KIND_CLIENT
    assert.equal(a["llmproxy.endpoint"], "primary");
    assert.equal(a["http.response.status_code"], 200);
    assert.equal(a["server.address"], "127.0.0.1");
    assert.ok(typeof a["llmproxy.upstream.ttfb_ms"] === "number");

    // 2. The failover: two attempt spans, the first an error with the upstream's status.
    const second = requests.find((span) => attributes(span.attributes)["llmproxy.attempts"] === 2);
    assert.ok(second, "the failed-over request's span");
    const attempts = children(second).map((span) => attributes(span.attributes))
      .sort((x, y) => (x["llmproxy.attempt"] as number) - (y["llmproxy.attempt"] as number));
    assert.deepEqual(attempts.map((x) => [x["llmproxy.endpoint"], x["http.response.status_code"]]), [
      ["primary", 500],
      ["fallback", 200],
    ]);
    assert.equal(attempts[0]["error.type"], "500");

    // 3. The stream: its span carries the usage chunk's tokens (so it ended after the stream did).
    const third = requests.find((span) => attributes(span.attributes)["llmproxy.stream"] === true);
    assert.ok(third, "the stream's span");
    assert.ok((attributes(third.attributes)["gen_ai.usage.output_tokens"] as number) > 0);
    assert.equal(attributes(third.attributes)["llmproxy.key.name"], "team-a");

    // 4. The GenAI histograms (exported every 500 ms here), with the token type split.
    const metrics = await waitFor("the GenAI histograms", () => {
      const text = receiver.bodies.filter((body) => body.path === "/v1/metrics").map((body) => body.text)
        .join("\n");
      return text.includes("gen_ai.client.token.usage") && text.includes("gen_ai.client.operation.duration")
        ? text
        : undefined;
    });
    assert.ok(metrics.includes('"output"'));

    // 5. Nothing secret or private anywhere in what was exported.
    const exported = receiver.bodies.map((body) => body.text).join("\n");
    for (const secret of [CLIENT_KEY, "sk-test-primary", "sk-test-fallback", PROMPT, "echo:"]) {
      assert.ok(!exported.includes(secret), `exported telemetry contains '${secret}'`);
    }
    assert.ok(!exported.includes("Bearer"));
  } finally {
    await receiver.server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
