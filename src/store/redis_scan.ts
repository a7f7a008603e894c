/** SCAN-based operations of the Redis store, run on every master (never KEYS): prefix deletes and usage figures. */

import { Cluster, type Redis } from "ioredis";
import type { PrefixUsage } from "./store.ts";

const SCAN_COUNT = 500;

/**
 * Removes every key under the logical `prefix` of namespace `ns`, on every master of a Cluster that answers; fails
 * only when none does (a lost master's keys went with it).
 */
export async function deleteByPrefix(client: Redis | Cluster, ns: string, prefix: string): Promise<number> {
  const match = `${escapeGlob(`${ns}:${prefix}`)}*`;
  const skip = skipped(ns, prefix);
  const nodes = client instanceof Cluster ? client.nodes("master") : [client];
  const counts = await Promise.allSettled(
    nodes.map((node) => deleteOnNode(node, match, skip, node !== client)),
  );
  const done = counts.filter((count) => count.status === "fulfilled").map((count) => count.value);
  if (done.length === 0) throw (counts[0] as PromiseRejectedResult).reason;
  return done.reduce((a, b) => a + b, 0);
}

/** How many keys lie under the logical `prefix` of namespace `ns` and the bytes of their values, on every master. */
export async function usageByPrefix(
  client: Redis | Cluster,
  ns: string,
  prefix: string,
): Promise<PrefixUsage> {
  const match = `${escapeGlob(`${ns}:${prefix}`)}*`;
  const nodes = client instanceof Cluster ? client.nodes("master") : [client];
  const usages = await Promise.all(nodes.map((node) => usageOnNode(node, match, skipped(ns, prefix))));
  return usages.reduce((a, b) => ({ entries: a.entries + b.entries, bytes: a.bytes + b.bytes }), {
    entries: 0,
    bytes: 0,
  });
}

/** An empty prefix must not take the health and window keys (`${ns}:{...`) with it. */
function skipped(ns: string, prefix: string): string | null {
  return prefix === "" ? `${ns}:{` : null;
}

/** SCANs one node for `match` and UNLINKs what it finds, page by page; returns how many keys went. */
export async function deleteOnNode(
  node: Redis,
  match: string,
  skip: string | null,
  clusterNode: boolean,
): Promise<number> {
  let cursor = "0";
  let count = 0;
  do {
    const [next, found] = await node.scan(cursor, "MATCH", match, "COUNT", SCAN_COUNT);
    cursor = next;
    const keys = skip === null ? found : found.filter((key) => !key.startsWith(skip));
    if (keys.length === 0) continue;
    if (!clusterNode) {
      count += await node.unlink(...keys);
      continue;
    }
    // A cluster node refuses multi-key commands across slots: one UNLINK per key, in one pipeline.
    const pipeline = node.pipeline();
    for (const key of keys) pipeline.unlink(key);
    for (const [error, n] of (await pipeline.exec()) ?? []) {
      if (error) throw error;
      count += n as number;
    }
  } while (cursor !== "0");
  return count;
}

/** SCANs one node for `match` and counts the keys and the bytes of their values, page by page. */
export async function usageOnNode(node: Redis, match: string, skip: string | null): Promise<PrefixUsage> {
  let cursor = "0";
  let entries = 0;
  let bytes = 0;
  do {
    const [next, found] = await node.scan(cursor, "MATCH", match, "COUNT", SCAN_COUNT);
    cursor = next;
    const keys = skip === null ? found : found.filter((key) => !key.startsWith(skip));
    if (keys.length === 0) continue;
    const pipeline = node.pipeline();
    for (const key of keys) pipeline.strlen(key);
    for (const [error, length] of (await pipeline.exec()) ?? []) {
      if (error) continue; // not a string (or gone): not counted
      if ((length as number) === 0) continue; // expired between SCAN and STRLEN
      entries++;
      bytes += length as number;
    }
  } while (cursor !== "0");
  return { entries, bytes };
}

/** Escapes the glob characters of a SCAN MATCH pattern. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}
