/**
 * A proxy on the memory store keeps each Responses turn (input and output, up to 1 MiB) for failover replay, for
 * `response_affinity_ttl` (six hours by default). Without a bound that is every turn of six hours in the process's
 * memory: a few requests a second with long inputs reach gigabytes. The turns are bounded (64 MiB, least recently
 * used out first), and the latest conversation can still be replayed.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const MIB = 1024 * 1024;

test({
  name: "memory store: Responses turns kept for replay are bounded (80 turns of 0.9 MiB hold at most 64 MiB)",
  timeout: 60_000,
  async fn() {
    await using a = await SimUpstream.start({ name: "a", quiet: true });
    await using b = await SimUpstream.start({ name: "b", quiet: true });
    await using proxy = await startProxy(
      groupYaml([endpointYaml(a.url, { name: "a" }), endpointYaml(b.url, { name: "b" })]),
      { logLevel: "error" },
    );
    const create = async (input: string, previous?: string) => {
      const response = await fetch(`${proxy.url}/v1/responses`, {
        method: "POST",
        body: JSON.stringify({
          model: "gpt-test",
          input,
          ...(previous ? { previous_response_id: previous } : {}),
        }),
      });
      const body = await response.json();
      assert.equal(response.status, 200, JSON.stringify(body).slice(0, 300));
      return { id: body.id as string, endpoint: response.headers.get("x-llmproxy-endpoint") };
    };
    const filler = "x".repeat(0.9 * MIB);
    let last = { id: "", endpoint: null as string | null };
    for (let i = 0; i < 80; i++) last = await create(`${i} ${filler}`);

    const turns = await proxy.services.store.usage!("turn:");
    assert.ok(
      turns.bytes <= 64 * MIB,
      `turns held: ${(turns.bytes / MIB).toFixed(1)} MiB in ${turns.entries}`,
    );
    assert.ok(turns.entries >= 60, `the most recent turns are kept (${turns.entries})`);

    // The latest turn is held: its owner going down, the conversation is replayed on the other endpoint.
    (last.endpoint === "a" ? a : b).always({ kind: "status", status: 500 });
    const response = await fetch(`${proxy.url}/v1/responses`, {
      method: "POST",
      body: JSON.stringify({ model: "gpt-test", input: "and then?", previous_response_id: last.id }),
    });
    await response.body?.cancel();
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-llmproxy-conversation"), "replayed");
  },
});
