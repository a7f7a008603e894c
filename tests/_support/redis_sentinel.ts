/**
 * Starts a Redis Sentinel setup for a test file: a master, one replica and three `redis-sentinel` processes that
 * watch it as `mymaster` (down after 1 s, quorum 2), on free ports of 127.0.0.1. About a second to come up.
 *
 *   await using set = await startSentinels();
 *   // general_settings: redis_sentinels: set.sentinels, redis_sentinel_master: mymaster
 */

import { freePort, query, type RedisServer, startRedis } from "./redis.ts";
import { tracked } from "./children.ts";

export interface SentinelSet extends AsyncDisposable {
  readonly master: RedisServer;
  readonly replica: RedisServer;
  /** `127.0.0.1:port` of each sentinel. */
  readonly sentinels: string[];
  /** The port the sentinels name as master now (null while they do not agree or do not answer). */
  masterPort(): Promise<number | null>;
}

export const MASTER_NAME = "mymaster";

/**
 * With `tls` (PEM file paths; the certificate must be good for server and client use), every server and sentinel
 * also listens with TLS, replication and the sentinels' own connections use it, the sentinels watch the master's
 * TLS port, and `sentinels` names their TLS ports (the plain ports stay open for the test's own checks).
 */
export async function startSentinels(
  options: { tls?: { readonly cert: string; readonly key: string; readonly ca: string } } = {},
): Promise<SentinelSet> {
  const tls = options.tls;
  const master = await startRedis({ tls });
  const replicaArgs = tls
    ? ["--replicaof", "127.0.0.1", String(master.tlsPort), "--tls-replication", "yes"]
    : ["--replicaof", "127.0.0.1", String(master.port)];
  const replica = await startRedis({ tls, args: replicaArgs });
  const tlsPorts: number[] = [];
  const dir = await Deno.makeTempDir({ prefix: "llmproxy-sentinel-" });
  const children: Deno.ChildProcess[] = [];
  const ports: number[] = [];
  const dispose = async () => {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.status;
    }
    await Promise.all([master[Symbol.asyncDispose](), replica[Symbol.asyncDispose]()]);
    await Deno.remove(dir, { recursive: true });
  };
  try {
    // Sentinel learns of replicas from the master's INFO, which it asks for on connecting and then every 10 s: a
    // replica not yet connected to the master (its TLS handshake is slow on a loaded machine) when the sentinels
    // come up is seen only 10 s later, and the readiness check below could run out of time ("sentinels not
    // ready"). Listed by the master is enough (its sync may still be waiting, ~5 s).
    const listed = Date.now() + 15_000;
    let replication: string | null = null;
    while (
      !(replication = await query(master.port, undefined, ["INFO", "replication"]))?.includes("slave0:")
    ) {
      if (Date.now() > listed) throw new Error(`the replica did not connect to the master: ${replication}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (let i = 0; i < 3; i++) {
      const port = freePort();
      const tlsPort = freePort();
      const conf = `${dir}/sentinel-${port}.conf`;
      const tlsLines = tls
        ? [
          `tls-port ${tlsPort}`,
          `tls-cert-file ${tls.cert}`,
          `tls-key-file ${tls.key}`,
          `tls-ca-cert-file ${tls.ca}`,
          "tls-replication yes",
        ]
        : [];
      await Deno.writeTextFile(
        conf,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `dir ${dir}`,
          ...tlsLines,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${tls ? master.tlsPort : master.port} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
          `sentinel failover-timeout ${MASTER_NAME} 4000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          "",
        ].join("\n"),
      );
      children.push(
        tracked(
          "redis-sentinel",
          new Deno.Command("redis-sentinel", { args: [conf], stdin: "null", stdout: "null", stderr: "null" })
            .spawn(),
        ),
      );
      ports.push(port);
      tlsPorts.push(tlsPort);
    }
    // Up once every sentinel knows the replica and the other two sentinels.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const infos = await Promise.all(ports.map((port) => query(port, undefined, ["INFO", "sentinel"])));
      if (infos.every((info) => info?.includes("status=ok") && info.includes("slaves=1,sentinels=3"))) break;
      if (Date.now() > deadline) throw new Error(`sentinels not ready: ${infos.join(" | ")}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    await dispose();
    throw error;
  }
  const masterPort = async () => {
    const infos = await Promise.all(ports.map((port) => query(port, undefined, ["INFO", "sentinel"])));
    const named = infos.map((info) => info?.match(/address=127\.0\.0\.1:(\d+)/)?.[1]);
    return named.every((port) => port !== undefined && port === named[0]) ? Number(named[0]) : null;
  };
  return {
    master,
    replica,
    sentinels: (tls ? tlsPorts : ports).map((port) => `127.0.0.1:${port}`),
    masterPort,
    [Symbol.asyncDispose]: dispose,
  };
}
