/** The operator scripts as users run them: subprocesses against the demo proxy (itself a subprocess). */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, runDeno, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const SCRIPTS = new URL("../../scripts/", import.meta.url).pathname;

const runScript = (name: string, args: string[], env: Record<string, string> = {}) =>
  runDeno(["run", "--allow-net", "--allow-env", `${SCRIPTS}${name}`, ...args], env);

test("live-check passes every check against the demo proxy, and the stream-cache demo shows a HIT", async () => {
  await using demo = await startProxyProcess(["--demo", "--port", "0"]);
  const check = await runScript("live_check.ts", ["--proxy-url", demo.url]);
  assert.equal(check.code, 0, check.output);
  for (
    const name of [
      "models",
      "chat",
      "streaming",
      "cache",
      "stream cache",
      "responses",
      "stats",
      "health",
      "metrics",
    ]
  ) {
    assert.match(check.output, new RegExp(`^${name}\\s+PASS`, "m"), `${name}:\n${check.output}`);
  }
  assert.match(check.output, /^auth\s+SKIP/m);
  assert.match(check.output, /9 passed, 0 failed, 1 skipped/);

  const replay = await runScript("stream_cache_demo.ts", ["--proxy-url", `${demo.url}/v1`]);
  assert.equal(replay.code, 0, replay.output);
  assert.match(replay.output, /^first\s+MISS/m);
  assert.match(replay.output, /^second\s+HIT/m);
  assert.match(replay.output, /same number of events: yes/);
  assert.equal(await demo.stop("SIGTERM"), 0);
});

test("live-check fails with exit code 1 and a FAIL row when the proxy is not there; 2 on bad usage", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const down = await runScript("live_check.ts", [
    "--proxy-url",
    `http://127.0.0.1:${port}`,
    "--timeout",
    "5",
  ]);
  assert.equal(down.code, 1, down.output);
  assert.match(down.output, /^models\s+FAIL/m);
  const usage = await runScript("live_check.ts", ["--proxy-url", "not-a-url"]);
  assert.equal(usage.code, 2);
  assert.match(usage.output, /Usage:/);
});

test("live-check with keys from the environment: auth checked, admin routes reached, keys not printed", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/llmproxy.yaml`;
    await Deno.writeTextFile(
      path,
      groupYaml([endpointYaml(sim.url)], ["api_keys: [sk-live-client]", "admin_keys: [sk-live-admin]"]),
    );
    await using proxy = await startProxyProcess(["--config", path, "--port", "0"]);
    const check = await runScript("live_check.ts", ["--proxy-url", proxy.url], {
      LLMPROXY_API_KEY: "sk-live-client",
      LLMPROXY_ADMIN_KEY: "sk-live-admin",
    });
    assert.equal(check.code, 0, check.output);
    assert.match(check.output, /^auth\s+PASS/m);
    assert.match(check.output, /^stats\s+PASS/m);
    assert.ok(!check.output.includes("sk-live"), "keys are not printed");
    assert.equal(await proxy.stop("SIGTERM"), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
