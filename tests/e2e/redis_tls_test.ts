/**
 * TLS to Redis, standalone and Cluster: `redis-server` started with TLS (clients must show a certificate) and a
 * CA this file makes with openssl. Instances configured with `rediss://` or `redis_ssl: true` and the
 * `redis_tls_*_file` keys share state over it; a client without the certificate is refused.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { makeCerts } from "../_support/certs.ts";
import { endpointYaml, groupYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { hasRedisCli, startCluster } from "../_support/redis_cluster.ts";
import { available, test } from "../_support/test.ts";

const ask = async (proxy: RunningProxy, content: string) => {
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content }] }),
  });
  await response.text();
  return response.headers.get("x-llmproxy-cache");
};

/** Two instances of `settings`: an answer cached through the first is a HIT on the second. */
async function sharedOverTls(sim: SimUpstream, settings: string[]) {
  const yaml = groupYaml([endpointYaml(sim.url, { name: "a" })], ["cache: true", ...settings]);
  await using a = await startProxy(yaml);
  await using b = await startProxy(yaml);
  const health = await (await fetch(`${a.url}/health`)).json();
  assert.deepEqual(health.store, { kind: "redis", status: "ok", nodes_down: [] });
  const prompt = `over tls ${crypto.randomUUID()}`;
  assert.equal(await ask(a, prompt), "MISS");
  await a.services.cache.settled();
  assert.equal(await ask(b, prompt), "HIT");
}

test({
  name: "TLS to Redis: standalone and Cluster, with a CA and a client certificate",
  ignore: !hasRedis || !hasRedisCli || !available("openssl"),
  timeout: 45_000,
  async fn(t) {
    await using certs = await makeCerts();
    const server = { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca };
    const files = [
      `redis_tls_ca_file: ${certs.ca}`,
      `redis_tls_cert_file: ${certs.clientCert}`,
      `redis_tls_key_file: ${certs.clientKey}`,
    ];
    await using sim = await SimUpstream.start({ name: "a", quiet: true });

    await t.step("standalone", async (t) => {
      await using redis = await startRedis({ tls: server });
      await t.step("redis_url: rediss://", async () => {
        await sharedOverTls(sim, [`redis_url: rediss://127.0.0.1:${redis.tlsPort}`, ...files]);
      });
      await t.step("redis_host, redis_port and redis_ssl: true", async () => {
        await sharedOverTls(sim, [
          "redis_host: 127.0.0.1",
          `redis_port: ${redis.tlsPort}`,
          "redis_ssl: true",
          ...files,
        ]);
        assert.ok(Number(await redis.command("DBSIZE")) > 0, "the entries went to this server");
      });
      await t.step("a client without the certificate is refused, and keeps the process up", async () => {
        // Each refused handshake errors its socket twice (the alert, then EPIPE on a write); a few tries.
        for (let i = 0; i < 5; i++) {
          const store = await RedisStore.connect({
            host: "127.0.0.1",
            port: redis.tlsPort,
            tlsFiles: { ca: certs.ca },
          });
          try {
            assert.equal(store.status(), "degraded");
            await new Promise((resolve) => setTimeout(resolve, 50));
          } finally {
            await store.close();
          }
        }
      });
    });

    await t.step("Cluster (tls-cluster yes)", async () => {
      await using cluster = await startCluster({ tls: server });
      await sharedOverTls(sim, [
        "redis_ssl: true",
        ...files,
        "redis_cluster_nodes:",
        ...cluster.seeds.map((seed) => `  - ${seed}`),
      ]);
    });
  },
});
