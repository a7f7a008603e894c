/**
 * `general_settings.usage_stream` with no Redis: the stream is a Redis Stream, so there is nothing to write to.
 * The block is then named at start-up as ignored (a `warn` line), and nothing is counted for it: a proxy with no
 * keys and no Redis counts no usage, with the block or without it (before, it counted every request as
 * `anonymous` for a stream it never wrote). The CLI as a subprocess, a simulated upstream, raw fetch.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

test("usage_stream with no Redis: named as ignored at start-up, and no request is counted for it", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/llmproxy.yaml`;
    await Deno.writeTextFile(
      path,
      `model_groups:
  - model_group: gpt-4o-mini
    models:
      - model: gpt-4o-mini
        params: {api_key: test-key-1, base_url: ${sim.url}}
general_settings:
  cache: false
  usage_stream:
    stream_key: "llmproxy-telemetry:usage"
    max_len: 1000
`,
    );
    await using proc = await startProxyProcess(["--config", path, "--port", "0"], {
      env: { LLMPROXY_CONFIG: "" },
    });
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${proc.url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(response.status, 200);
      await response.body?.cancel();
    }
    const stats = await (await fetch(`${proc.url}/stats`)).json();
    assert.deepEqual(stats.usage_today, {}, "nothing counted for a stream that cannot be written");
    const metrics = await (await fetch(`${proc.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /llmproxy_key_requests_total\{[^}]*anonymous/);
    assert.equal(await proc.stop("SIGINT"), 0);
    const ignored = proc.output().split("\n").filter((line) => line.includes('"level":"warn"'))
      .map((line) => JSON.parse(line)).filter((entry) => / is ignored: /.test(entry.msg));
    assert.deepEqual(ignored.map((entry) => entry.key), ["general_settings.usage_stream"]);
    assert.match(ignored[0].msg, /no Redis is configured/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
