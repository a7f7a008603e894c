/** A user coming from the Python LLMProxy starts the CLI with their config, or with none at all. */

import assert from "node:assert/strict";
import { V8_FLAGS } from "../../scripts/compile.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

test("a Python-shaped config with nulls starts, warns once per ignored key naming it, and serves", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/llmproxy.yaml`;
    await Deno.writeTextFile(
      path,
      `model_groups:
  - model_group: gpt-3.5-turbo
    models:
      - model: gpt-3.5-turbo
        weight: 1
        params:
          api_key: test-key-1
          base_url: ${sim.url}
          api_version: null
general_settings:
  bind_address: 127.0.0.1
  bind_port: 5000
  http_timeout: 300
  http_max_connections: 100
  redis_ssl_cert_reqs: required
  redis_password:
  cache: true
  cache_params:
    type: redis
    ttl: 300
    namespace: "llmproxy.test"
    host: null
`,
    );
    await using proc = await startProxyProcess(["--config", path, "--port", "0"], {
      env: { LLMPROXY_CONFIG: "" },
    });
    const response = await fetch(`${proc.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model: "gpt-3.5-turbo", messages: [{ role: "user", content: "from python" }] }),
    });
    assert.equal(response.status, 200);
    assert.match((await response.json()).choices[0].message.content, /from python/);
    assert.equal(await proc.stop("SIGINT"), 0);
    const warnings = proc.output().split("\n").filter((line) => line.includes('"level":"warn"'))
      .map((line) => JSON.parse(line));
    const ignored = warnings.filter((entry) => / is ignored: /.test(entry.msg)).map((entry) => entry.key);
    assert.deepEqual(ignored, [
      "general_settings.http_max_connections",
      "general_settings.redis_ssl_cert_reqs",
      "general_settings.cache_params.type",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("no config on a fresh checkout: exit 2 and the copy command for llmproxy.yaml.example", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const env = Deno.env.toObject();
    delete env.LLMPROXY_CONFIG;
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", V8_FLAGS, MAIN],
      cwd: dir,
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).output();
    const output = new TextDecoder().decode(result.stderr);
    assert.equal(result.code, 2);
    assert.match(output, /Cannot load config 'llmproxy\.yaml': file not found/);
    assert.match(output, /cp llmproxy\.yaml\.example llmproxy\.yaml/);
    assert.match(output, /--demo/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
