/** The CLI as a user runs it: flags, exit codes, config errors, the Listening line, graceful shutdown. */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, runCli, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

async function withConfigFile<T>(text: string, run: (path: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/llmproxy.yaml`;
  await Deno.writeTextFile(path, text);
  try {
    return await run(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

test("--help, --version and unknown flags", async () => {
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.output, /--config PATH/);
  const version = await runCli(["--version"]);
  assert.equal(version.code, 0);
  assert.match(version.output.trim(), /^\d+\.\d+\.\d+$/);
  const unknown = await runCli(["--colour", "blue"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.output, /colour/);
  assert.match(unknown.output, /Usage:/);
  const badPort = await runCli(["--port", "http"]);
  assert.equal(badPort.code, 2);
  // Every flag --help lists is in README's flag table.
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const table = readme.slice(readme.indexOf("| flag "), readme.indexOf("When the proxy is ready"));
  const flags = [...help.output.matchAll(/^ {2}(--[a-z-]+)/gm)].map(([, flag]) => flag);
  assert.ok(flags.length >= 8, help.output);
  assert.deepEqual(flags.filter((flag) => !table.includes(`\`${flag}`)), [], "flags missing from README");
});

test("config problems stop start-up with exit code 2 and a message naming file, path and value", async () => {
  const missing = await runCli(["--config", "/nonexistent/llmproxy.yaml"]);
  assert.equal(missing.code, 2);
  assert.match(missing.output, /\/nonexistent\/llmproxy.yaml/);

  const bad = groupYaml([endpointYaml("http://127.0.0.1:1", { weight: -1 })]);
  await withConfigFile(bad, async (path) => {
    const result = await runCli(["--config", path]);
    assert.equal(result.code, 2);
    assert.match(result.output, /model_groups\[0\]\.models\[0\]\.weight must be >= 0, got -1 \(line \d+\)/);
    assert.ok(!result.output.includes("    at "), "no stack trace");
  });

  const unsetEnv = groupYaml([endpointYaml("http://127.0.0.1:1")]).replace(
    "sk-test-key",
    "os.environ/SURELY_UNSET_VAR",
  );
  await withConfigFile(unsetEnv, async (path) => {
    const result = await runCli(["--config", path], { LLMPROXY_CONFIG: "" });
    assert.equal(result.code, 2);
    assert.match(result.output, /SURELY_UNSET_VAR/);
  });

  // A key's models naming no group (a typo) locked the key out of the group it was meant for, silently.
  const typo = groupYaml([endpointYaml("http://127.0.0.1:1")]) +
    "keys: [{name: team, key: k, models: [gpt-tset]}]\n";
  await withConfigFile(typo, async (path) => {
    const result = await runCli(["--config", path]);
    assert.equal(result.code, 2, result.output);
    assert.match(
      result.output,
      /keys\[0\]\.models\[0\] must match a model group, got "gpt-tset" \(groups: gpt-test\)/,
    );
  });
});

test("--check: 0 and what the file holds when it loads, 2 and the message when not; never listens", async () => {
  const good = groupYaml([endpointYaml("http://127.0.0.1:1"), endpointYaml("http://127.0.0.1:2")]);
  await withConfigFile(good, async (path) => {
    const result = await runCli(["--config", path, "--check"]);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /is valid: 1 model groups, 2 endpoints, 0 named keys/);
    assert.ok(!result.output.includes("Listening on"), result.output);
  });
  await withConfigFile(good.replace("cooldown_time: 30", "cooldown_tme: 30"), async (path) => {
    const result = await runCli(["--check"], { LLMPROXY_CONFIG: path });
    assert.equal(result.code, 2, result.output);
    assert.match(
      result.output,
      /general_settings\.cooldown_tme is not a known key \(did you mean 'cooldown_time'\?\)/,
    );
  });
  assert.equal((await runCli(["--check", "--demo"])).code, 2);
});

test("serves a real config from --config and from $LLMPROXY_CONFIG; --port 0 picks a free port", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await withConfigFile(groupYaml([endpointYaml(sim.url)]), async (path) => {
    for (
      const [args, env] of [[["--config", path, "--port", "0"], {}], [["--port", "0"], {
        LLMPROXY_CONFIG: path,
      }]] as const
    ) {
      await using proc = await startProxyProcess([...args], { env });
      assert.match(proc.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const response = await fetch(`${proc.url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "cli" }] }),
      });
      assert.equal(response.status, 200);
      assert.match((await response.json()).choices[0].message.content, /echo: cli/);
      assert.equal(await proc.stop("SIGINT"), 0);
    }
  });
});

// A shutdown_timeout past the runtime's longest timer (2^31 - 1 ms, ~24.8 days), written to mean "wait": it cut
// every stream at once, its timer firing after 1 ms.
for (const settings of [[], ["shutdown_timeout: 2592000"]]) {
  test(`SIGTERM lets an in-flight stream finish, then exits 0 (${settings[0] ?? "default shutdown_timeout"})`, async () => {
    await using sim = await SimUpstream.start({ quiet: true, chunks: 8, chunkDelayMs: 100 });
    await withConfigFile(groupYaml([endpointYaml(sim.url)], settings), (path) => stopMidStream(path));
  });
}

async function stopMidStream(path: string): Promise<void> {
  await using proc = await startProxyProcess(["--config", path, "--port", "0"]);
  const response = await fetch(`${proc.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({
      model: "gpt-test",
      stream: true,
      messages: [{ role: "user", content: "drain" }],
    }),
  });
  const reader = response.body!.getReader();
  await reader.read();
  const stopping = proc.stop("SIGTERM");
  let text = "";
  const decoder = new TextDecoder();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value);
  }
  assert.match(text, /data: \[DONE\]/, "the stream finished after the signal");
  assert.equal(await stopping, 0);
  assert.match(proc.output(), /shutting down/);
  assert.ok(!proc.output().includes("shutdown timeout reached"), proc.output());
}

test("deno task demo serves with no API key", async () => {
  await using proc = await startProxyProcess(["--demo", "--port", "0"]);
  // The try-it commands may arrive a moment after the listening line (another stream, batched output).
  for (let i = 0; i < 100 && !/curl/.test(proc.output()); i++) await delay(20);
  assert.match(proc.output(), /curl/);
  const response = await fetch(`${proc.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "demo", messages: [{ role: "user", content: "hello demo" }] }),
  });
  assert.equal(response.status, 200);
  assert.match((await response.json()).choices[0].message.content, /echo: hello demo/);
  assert.equal(await proc.stop("SIGTERM"), 0);
});

test("binding beyond loopback with no api_keys starts, with a loud warning; with keys, no warning", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await withConfigFile(groupYaml([endpointYaml(sim.url)]), async (path) => {
    await using open = await startProxyProcess(["--config", path, "--host", "0.0.0.0", "--port", "0"]);
    for (let i = 0; i < 100 && !open.output().includes("SECURITY WARNING"); i++) await delay(20);
    const warning = open.output().split("\n").find((line) => line.includes("SECURITY WARNING"));
    assert.ok(warning, open.output());
    assert.equal(JSON.parse(warning).level, "warn");
    assert.equal(await open.stop("SIGTERM"), 0);
  });
  await withConfigFile(groupYaml([endpointYaml(sim.url)], ["api_keys: [sk-local-test]"]), async (path) => {
    await using keyed = await startProxyProcess(["--config", path, "--host", "0.0.0.0", "--port", "0"]);
    const response = await fetch(`${keyed.url}/v1/models`, {
      headers: { authorization: "Bearer sk-local-test" },
    });
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.equal(await keyed.stop("SIGTERM"), 0);
    assert.ok(!keyed.output().includes("SECURITY WARNING"));
    assert.ok(!keyed.output().includes("sk-local-test"), "the key is not logged");
    assert.match(keyed.output(), /"msg":"request"/, "the access log line was flushed before exit");
  });
});

test("a port already in use is one clear line and exit code 1, not a stack trace", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const result = await runCli(["--demo", "--port", String(taken.addr.port)]);
    assert.equal(result.code, 1);
    assert.match(result.output, new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${taken.addr.port}: AddrInUse`));
    assert.ok(!result.output.includes("    at "), "no stack trace");
  } finally {
    taken.close();
  }
});
