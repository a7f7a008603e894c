/**
 * A SIGHUP that rotates an Entra ID secret while a request is under way: the attempts that request still makes on
 * the old config share the token it already had, instead of asking the token endpoint once per attempt; the new
 * config's requests fetch a token for the new secret. Through the CLI, as an operator reloads.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { chat } from "../_support/entra_proxy.ts";
import { delay, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";
import { startTokenServer } from "../_support/token_server.ts";

const OLD = "entra-secret-before-5a1e";
const NEW = "entra-secret-after-77c2";

/** Three Azure endpoints with one credential, tried in order: `first`, then `second`, then `last`. */
function config(tokenUrl: string, secret: string, urls: string[]): string {
  return [
    "model_groups:",
    "  - model_group: gpt-test",
    "    models:",
    ...urls.flatMap((url, i) => [
      "      - model: gpt-4o-deployment",
      `        priority: ${i}`,
      "        params:",
      `          base_url: ${url}`,
      "          provider: azure",
      `          api_version: "2024-10-21"`,
      `          name: e${i}`,
      "          azure_ad:",
      "            tenant_id: t1",
      "            client_id: app-id",
      `            client_secret: ${secret}`,
      `            authority_host: ${tokenUrl}`,
    ]),
    "general_settings:",
    "  cache: false",
    "  allowed_fails: 100",
  ].join("\n") + "\n";
}

test("a SIGHUP rotating an Entra secret mid-request: the old request's later attempts fetch no token", {
  timeout: 40_000,
}, async () => {
  await using tokens = startTokenServer();
  // The first endpoint fails after 1.5 s (the reload lands meanwhile), the second at once, the third answers.
  await using first = await SimUpstream.start({ name: "first", quiet: true, latencyMs: 1500 });
  await using second = await SimUpstream.start({ name: "second", quiet: true });
  await using last = await SimUpstream.start({ name: "last", quiet: true });
  first.always({ kind: "status", status: 500 });
  second.always({ kind: "status", status: 500 });
  const urls = [first.url, second.url, last.url];
  const dir = await Deno.makeTempDir({ prefix: "llmproxy-entra-reload-" });
  try {
    const path = `${dir}/llmproxy.yaml`;
    await Deno.writeTextFile(path, config(tokens.url, OLD, urls));
    await using proxy = await startProxyProcess(["--config", path, "--port", "0"]);
    const running = chat(proxy.url);
    for (let i = 0; i < 200 && first.count() === 0; i++) await delay(10);
    assert.equal(first.count(), 1, "the first attempt is under way");

    await Deno.writeTextFile(path, config(tokens.url, NEW, urls));
    proxy.child.kill("SIGHUP");
    for (let i = 0; i < 100 && !proxy.output().includes("config reloaded"); i++) await delay(10);
    assert.match(proxy.output(), /config reloaded/);
    assert.equal(first.count(), 1, "the reload landed while the first attempt ran");

    const answer = await running;
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.endpoint, "e2");
    assert.equal(second.count(), 1);
    const secrets = () => tokens.calls.map((call) => call.params.client_secret);
    // Its three attempts, two after the reload, took one token: before, each later attempt fetched its own.
    assert.deepEqual(secrets(), [OLD]);

    first.always({ kind: "ok" });
    const after = await chat(proxy.url);
    assert.equal(after.endpoint, "e0");
    assert.deepEqual(secrets(), [OLD, NEW], "the new config fetches for the new secret");
    assert.ok(!proxy.output().includes(OLD) && !proxy.output().includes(NEW), "no secret in the logs");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
