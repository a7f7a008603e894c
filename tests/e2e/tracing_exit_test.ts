/**
 * Deno exports the last spans and metrics at exit and waits for the collector. With one that accepts and never
 * answers, that wait is bounded by `OTEL_EXPORTER_OTLP_TIMEOUT` per export (spans, logs, metrics in turn; 10 s each
 * by default): README "Tracing" tells operators to set it, and this test is what says it still holds.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

test(
  "tracing: a collector that never answers holds the exit at most ~3 x OTEL_EXPORTER_OTLP_TIMEOUT after SIGTERM",
  {
    timeout: 40_000,
  },
  async () => {
    const held: Deno.Conn[] = [];
    const collector = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepting = (async () => {
      for await (const conn of collector) held.push(conn);
    })();
    await using sim = await SimUpstream.start({ name: "a", quiet: true, record: false });
    const dir = await Deno.makeTempDir();
    try {
      const config = `${dir}/llmproxy.yaml`;
      await Deno.writeTextFile(config, groupYaml([endpointYaml(sim.url, { name: "a" })], ["cache: false"]));
      await using proxy = await startProxyProcess(["--config", config, "--port", "0"], {
        env: {
          OTEL_DENO: "true",
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collector.addr.port}`,
          OTEL_DENO_CONSOLE: "ignore",
          OTEL_EXPORTER_OTLP_TIMEOUT: "500",
        },
      });
      for (let i = 0; i < 20; i++) {
        await Promise.all(Array.from({ length: 10 }, async (_, j) => {
          const response = await fetch(`${proxy.url}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: `${i} ${j}` }] }),
          });
          assert.equal(response.status, 200);
          await response.body?.cancel();
        }));
      }
      const stopping = Date.now();
      assert.equal(await proxy.stop("SIGTERM"), 0);
      const took = Date.now() - stopping;
      assert.match(proxy.output(), /"msg":"stopped"/);
      assert.ok(held.length > 0, "the collector was asked");
      // Without the variable (10 s per export) this took 10 to 30 s here.
      assert.ok(took < 5_000, `the exit took ${took} ms after SIGTERM`);
    } finally {
      collector.close();
      await accepting.catch(() => {});
      for (const conn of held) conn.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
