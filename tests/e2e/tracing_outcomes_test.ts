/**
 * OpenTelemetry spans of the requests that did not simply succeed, through the real proxy process exporting OTLP/HTTP
 * JSON to a receiver this test starts: a stream the upstream cuts (the client gets a clean end with an error event,
 * and the span says `stream_cut`, as does that of an identical request that followed it, coalesced), a stream and a
 * JSON request the client leaves (`client_closed`), a cache hit, a request every endpoint failed.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";
import { attributes, startReceiver, waitFor } from "../_support/otlp_receiver.ts";

const chat = (url: string, content: string, extra: Record<string, unknown> = {}, signal?: AbortSignal) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "gpt-test",
      stream: false,
      messages: [{ role: "user", content }],
      ...extra,
    }),
    signal,
  });

test("tracing: a cut stream, a client leaving, a cache hit and a failure each end their span as they ended", {
  timeout: 60_000,
}, async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true, chunks: 20, chunkDelayMs: 50 });
  await using other = await SimUpstream.start({ name: "b", quiet: true });
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
        endpointYaml(sim.url, { name: "a" }),
        "  - model_group: gpt-two",
        "    models:",
        endpointYaml(other.url, { name: "b" }),
        "general_settings:",
        "  cache: true",
        "  allowed_fails: 100",
      ].join("\n") + "\n",
    );
    await using proxy = await startProxyProcess(["--config", config, "--port", "0"], {
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_DENO_CONSOLE: "ignore",
        OTEL_BSP_SCHEDULE_DELAY: "200",
      },
    });
    // The client leaves a stream after its first chunk.
    const left = await chat(proxy.url, "left", { stream: true });
    const reader = left.body!.getReader();
    await reader.read();
    await reader.cancel();
    // The same question twice: the second is a cache hit.
    for (let i = 0; i < 2; i++) {
      assert.equal((await chat(proxy.url, "cached")).headers.get("x-llmproxy-cache"), i ? "HIT" : "MISS");
    }
    // The client leaves a JSON request while the upstream thinks.
    sim.next({ kind: "hang" });
    const controller = new AbortController();
    const leaving = chat(proxy.url, "leaving", {}, controller.signal).catch(() => null);
    await delay(300);
    controller.abort();
    await leaving;
    // Every endpoint fails.
    other.next({ kind: "status", status: 500 });
    const failed = await chat(proxy.url, "failed", { model: "gpt-two" });
    assert.equal(failed.status, 503);
    await failed.body?.cancel();
    // The upstream cuts a stream after three chunks: the client's stream ends with an error event, and so does
    // that of an identical request that joined it (coalesced) meanwhile.
    sim.next({ kind: "cut", afterChunks: 3 });
    const cuts = await Promise.all([0, 1].map(async (i) => {
      await delay(i * 30);
      const answer = await chat(proxy.url, "cut", { stream: true });
      return { cache: answer.headers.get("x-llmproxy-cache"), text: await answer.text() };
    }));
    assert.deepEqual(cuts.map((cut) => cut.cache), ["MISS", "COALESCED"]);
    for (const cut of cuts) assert.match(cut.text, /upstream_stream_error/);

    const spans = await waitFor("seven request spans", () => {
      const found = receiver.spans().filter((span) => span.kind === 1 && span.name.startsWith("chat "));
      return found.length >= 7 ? found : undefined;
    });
    const seen: Record<string, unknown>[] = spans.map((span) => ({
      ...attributes(span.attributes),
      error: span.status?.code === 2,
    }));
    const pick = (want: Record<string, unknown>) =>
      seen.filter((span) => Object.entries(want).every(([name, value]) => span[name] === value));
    // Each request's span says how it ended; only the successes carry no error.
    assert.equal(
      pick({ "llmproxy.stream": true, "error.type": "stream_cut", error: true, "llmproxy.cache": "MISS" })
        .length,
      1,
      "the cut stream",
    );
    assert.equal(
      pick({
        "llmproxy.stream": true,
        "error.type": "stream_cut",
        error: true,
        "llmproxy.cache": "COALESCED",
      }).length,
      1,
      "the cut stream's follower",
    );
    assert.equal(
      pick({ "llmproxy.stream": true, "error.type": "client_closed", error: true }).length,
      1,
      "the left stream",
    );
    assert.equal(
      pick({ "llmproxy.stream": false, "error.type": "client_closed", error: true }).length,
      1,
      "the left JSON request",
    );
    assert.equal(
      pick({ "llmproxy.cache": "HIT", "llmproxy.attempts": 0, error: false }).length,
      1,
      "the cache hit",
    );
    assert.equal(
      pick({ "gen_ai.request.model": "gpt-two", "error.type": "503", error: true }).length,
      1,
      "the failure",
    );
    assert.equal(
      seen.filter((span) => !span.error && span["error.type"] === undefined).length,
      2,
      "two successes",
    );
  } finally {
    await receiver.server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

test("tracing: an upstream naming a new model in every answer labels the histograms with 50 names at most", {
  timeout: 60_000,
}, async () => {
  let answered = 0;
  await using upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      await request.text();
      answered++;
      return Response.json({
        id: `chatcmpl-${answered}`,
        object: "chat.completion",
        created: 1,
        model: `model-of-the-moment-${answered}`,
        choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }],
        usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
      });
    },
  );
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
        endpointYaml(`http://127.0.0.1:${upstream.addr.port}`, { name: "a" }),
        "general_settings:",
        "  cache: false",
      ].join("\n") + "\n",
    );
    await using proxy = await startProxyProcess(["--config", config, "--port", "0"], {
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_DENO_CONSOLE: "ignore",
        OTEL_BSP_SCHEDULE_DELAY: "200",
        OTEL_METRIC_EXPORT_INTERVAL: "300",
      },
    });
    for (let i = 0; i < 120; i++) {
      const answer = await chat(proxy.url, `question ${i}`);
      assert.equal(answer.status, 200);
      await answer.body?.cancel();
    }
    const names = (text: string) => new Set(text.match(/model-of-the-moment-\d+/g));
    // Every span names its answer's model.
    await waitFor("120 request spans", () => {
      const spans = receiver.spans().filter((span) => span.kind === 1 && span.name === "chat gpt-test");
      return names(JSON.stringify(spans)).size === 120 ? spans : undefined;
    });
    // The latest export of the histograms, taken after the last request's.
    const exported = receiver.bodies.length;
    const metrics = await waitFor("a metrics export", () => {
      const later = receiver.bodies.slice(exported).filter((body) => body.path === "/v1/metrics");
      return later.at(-1)?.text;
    });
    assert.ok(metrics.includes("gen_ai.client.operation.duration"));
    assert.equal(names(metrics).size, 50);
  } finally {
    await receiver.server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

test("tracing: with the fetch client, an endpoint whose URL has a query of its own is named in a warning", {
  timeout: 60_000,
}, async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  const receiver = startReceiver();
  const dir = await Deno.makeTempDir();
  const SECRET = "function-key-5e0d";
  try {
    for (const client of ["http1", "fetch"]) {
      const config = `${dir}/llmproxy.yaml`;
      await Deno.writeTextFile(
        config,
        [
          "model_groups:",
          "  - model_group: gpt-test",
          "    models:",
          endpointYaml(sim.url, { name: "plain" }),
          endpointYaml(sim.url, {
            name: "keyed",
            extra: ["          default_query:", `            code: ${SECRET}`].join("\n"),
          }),
          "general_settings:",
          "  cache: false",
          `  upstream_client: ${client}`,
        ].join("\n") + "\n",
      );
      const before = receiver.bodies.length;
      await using proxy = await startProxyProcess(["--config", config, "--port", "0"], {
        env: {
          OTEL_DENO: "true",
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_DENO_CONSOLE: "ignore",
          OTEL_BSP_SCHEDULE_DELAY: "200",
        },
      });
      for (let i = 0; i < 4; i++) {
        const answer = await chat(proxy.url, `q ${i}`);
        assert.equal(answer.status, 200);
        await answer.body?.cancel();
      }
      // With the fetch client, also Deno's span of a call to "keyed": spans go out in batches, and on a loaded
      // machine that one came in a later batch than the first chat span (the suite under 2 busy loops).
      const exported = await waitFor("the spans", () => {
        const text = receiver.bodies.slice(before).map((body) => body.text).join("\n");
        const keyedCall = client === "http1" || text.includes(SECRET);
        return text.includes("chat gpt-test") && keyedCall ? text : undefined;
      });
      const warning = proxy.output().split("\n").find((line) => line.includes("Deno's own fetch spans"));
      assert.ok(!proxy.output().includes(SECRET), "the query's value in the proxy's output");
      if (client === "http1") {
        assert.equal(warning, undefined);
        assert.ok(!exported.includes(SECRET), "the query's value exported with the http1 client");
      } else {
        // Deno's fetch span carries the URL as called: the proxy cannot leave the query out, so it says so.
        assert.ok(exported.includes(SECRET));
        assert.deepEqual(JSON.parse(warning!).endpoints, ["keyed"]);
      }
    }
  } finally {
    await receiver.server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
