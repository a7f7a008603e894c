/**
 * Redis Sentinel with TLS: a master, a replica and three `redis-sentinel` processes, all listening with TLS (a CA
 * made with openssl; clients must show a certificate), replication and the sentinels' own links over TLS. Two
 * instances configured with `redis_sentinels` (the sentinels' TLS ports), `redis_ssl: true` and the
 * `redis_tls_*_file` keys share state on the master, and again on the replica once Sentinel promoted it.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { makeCerts } from "../_support/certs.ts";
import { delay, endpointYaml, groupYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { hasRedis } from "../_support/redis.ts";
import { MASTER_NAME, startSentinels } from "../_support/redis_sentinel.ts";
import { available, test } from "../_support/test.ts";

const ask = async (proxy: RunningProxy, content: string) => {
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }] }),
  });
  await response.text();
  return response.headers.get("x-llmproxy-cache");
};

test({
  name: "Sentinel with TLS: instances find the master through TLS sentinels, share state, follow a failover",
  ignore: !hasRedis || !available("redis-sentinel") || !available("openssl"),
  timeout: 60_000,
  async fn() {
    await using certs = await makeCerts();
    await using set = await startSentinels({
      tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca },
    });
    await using sim = await SimUpstream.start({ name: "a", quiet: true });
    const yaml = groupYaml([endpointYaml(sim.url, { name: "a" })], [
      "cache: true",
      "redis_sentinels:",
      ...set.sentinels.map((sentinel) => `  - ${sentinel}`),
      `redis_sentinel_master: ${MASTER_NAME}`,
      "redis_ssl: true",
      `redis_tls_ca_file: ${certs.ca}`,
      `redis_tls_cert_file: ${certs.clientCert}`,
      `redis_tls_key_file: ${certs.clientKey}`,
    ]);
    await using a = await startProxy(yaml);
    await using b = await startProxy(yaml);
    const shared = async (prompt: string) => {
      assert.equal(await ask(a, prompt), "MISS");
      await a.services.cache.settled();
      assert.equal(await ask(b, prompt), "HIT", `'${prompt}' cached through A is a HIT on B`);
    };
    const health = await (await fetch(`${a.url}/health`)).json();
    assert.deepEqual(health.store, { kind: "redis", status: "ok", nodes_down: [] });
    await shared("before the failover");
    assert.ok(Number(await set.master.command("DBSIZE")) > 0, "the entry went to the master");

    await set.master.signal("SIGKILL");
    const deadline = Date.now() + 20_000;
    while ((await set.masterPort()) !== set.replica.tlsPort && Date.now() < deadline) await delay(100);
    assert.equal(await set.masterPort(), set.replica.tlsPort, "Sentinel promoted the replica");
    // Both instances reconnect to the promoted replica over TLS (a READONLY answer meanwhile is an outage). The
    // reconnect backs off up to 2 s per attempt while the master is gone; a loaded CI machine needed over 10 s.
    const until = Date.now() + 20_000;
    let last = "";
    for (let i = 0; Date.now() < until; i++) {
      const prompt = `after the failover ${i}`;
      const first = await ask(a, prompt);
      await a.services.cache.settled();
      last = `${first} then ${await ask(b, prompt)}`;
      if (last === "MISS then HIT") break;
      await delay(200);
    }
    assert.equal(last, "MISS then HIT", "shared again on the promoted replica");
  },
});
