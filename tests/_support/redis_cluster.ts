/**
 * Starts a real Redis Cluster on 127.0.0.1 for a test file: `masters` `redis-server --cluster-enabled yes` on free
 * ports (plus `replicas` per master), joined by `redis-cli --cluster create ... --cluster-yes`. Start it once per
 * test file; it comes up in one to two seconds.
 *
 *   await using cluster = await startCluster();
 *   const store = await RedisStore.connect({ clusterNodes: cluster.seeds, namespace });
 *
 * Nodes run with `cluster-require-full-coverage no` (the slots of healthy masters keep working while another's
 * are uncovered) and a short `cluster-node-timeout`, so failure tests see failover in about a second.
 */

import { type RedisServer, startRedis } from "./redis.ts";
import { available } from "./test.ts";

export interface RedisCluster extends AsyncDisposable {
  /** Every node, masters first, in the order given to `--cluster create`. */
  readonly nodes: readonly RedisServer[];
  /** `127.0.0.1:port` of every node, for `redis_cluster_nodes` (the TLS ports when started with `tls`). */
  readonly seeds: string[];
  /** The node serving `slot` now (asks the first node that answers). */
  masterOf(slot: number): Promise<RedisServer | undefined>;
  /** Resolves once every running node says `cluster_state:ok`; rejects after `timeoutMs`. */
  waitOk(timeoutMs?: number): Promise<void>;
}

export interface StartClusterOptions {
  readonly masters?: number;
  readonly replicas?: number;
  /** `cluster-node-timeout` in ms; default 1000. */
  readonly nodeTimeoutMs?: number;
  /** More `redis-server` arguments for every node. */
  readonly args?: readonly string[];
  /**
   * TLS for clients and the cluster bus (`tls-cluster yes`): nodes then announce their TLS ports, and `seeds`
   * name them. PEM file paths; the certificate must be good for both server and client use.
   */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
}

/** `redis-cli` builds the cluster; see `available` for CI. */
export const hasRedisCli: boolean = available("redis-cli");

export async function startCluster(options: StartClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 0;
  const args = [
    "--cluster-node-timeout",
    String(options.nodeTimeoutMs ?? 1000),
    "--cluster-require-full-coverage",
    "no",
    "--cluster-allow-reads-when-down",
    "no",
    ...options.tls ? ["--tls-cluster", "yes", "--tls-replication", "yes"] : [],
    ...options.args ?? [],
  ];
  const nodes = await Promise.all(
    Array.from(
      { length: masters * (1 + replicas) },
      () => startRedis({ cluster: "node", args, tls: options.tls }),
    ),
  );
  const dispose = async () => void await Promise.all(nodes.map((node) => node[Symbol.asyncDispose]()));
  try {
    const create = await new Deno.Command("redis-cli", {
      args: [
        "--cluster",
        "create",
        // With tls-cluster the cluster bus is found from the TLS port.
        ...nodes.map((node) => `127.0.0.1:${node.tlsPort ?? node.port}`),
        "--cluster-replicas",
        String(replicas),
        "--cluster-yes",
        ...options.tls
          ? ["--tls", "--cacert", options.tls.ca, "--cert", options.tls.cert, "--key", options.tls.key]
          : [],
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!create.success) {
      throw new Error(`redis-cli --cluster create failed: ${new TextDecoder().decode(create.stdout)}`);
    }
    const cluster = clusterOf(nodes, dispose);
    await cluster.waitOk(10_000);
    return cluster;
  } catch (error) {
    await dispose();
    throw error;
  }
}

function clusterOf(nodes: RedisServer[], dispose: () => Promise<void>): RedisCluster {
  const waitOk = async (timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(nodes.map((node) => node.command("CLUSTER", "INFO")));
      const answering = states.filter((state) => state !== null);
      if (answering.length > 0 && answering.every((state) => state!.includes("cluster_state:ok"))) return;
      if (Date.now() > deadline) throw new Error(`cluster not ok after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const masterOf = async (slot: number) => {
    for (const node of nodes) {
      const table = await node.command("CLUSTER", "NODES");
      if (table === null) continue;
      for (const line of table.split("\n")) {
        const fields = line.split(" ");
        if (!fields[2]?.includes("master") || fields[2].includes("fail")) continue;
        const owns = fields.slice(8).some((range) => {
          const [from, to] = range.split("-").map(Number);
          return slot >= from && slot <= (to ?? from);
        });
        const port = Number(fields[1]?.split(":")[1]?.split("@")[0]);
        if (owns) return nodes.find((candidate) => candidate.port === port || candidate.tlsPort === port);
      }
      return undefined;
    }
    return undefined;
  };
  return {
    nodes,
    seeds: nodes.map((node) => `127.0.0.1:${node.tlsPort ?? node.port}`),
    masterOf,
    waitOk,
    [Symbol.asyncDispose]: dispose,
  };
}
