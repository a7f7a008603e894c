/**
 * Relay streams on Redis (`Store.appendToRelay` / `readRelay`): one Redis Stream per streamed answer shared live
 * across instances. An append is XADD (trimming older entries with MINID when asked) and PEXPIRE, issued in the
 * same tick so the auto-pipeline sends them in one write; a read is a non-blocking XREAD of one key, so it never
 * holds up the shared connection. One key per call: on a Cluster each goes to the node of its slot.
 */

import { Buffer } from "node:buffer";
import type { Cluster, Redis } from "ioredis";
import type { RelayAppend, RelayEntry } from "./store.ts";

type Client = Redis | Cluster;

/** The field that holds an entry's bytes. */
const DATA = "d";

export async function appendToRelay(
  client: Client,
  key: string,
  entry: RelayAppend,
  ttlMs: number,
): Promise<string> {
  const args: (string | Buffer)[] = entry.trimBefore === undefined ? [] : ["MINID", entry.trimBefore];
  args.push("*", ...Object.entries(entry.fields).flat());
  if (entry.data) {
    args.push(DATA, Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength));
  }
  const [id] = await Promise.all([
    client.xadd(key, ...args),
    client.pexpire(key, Math.max(1, Math.ceil(ttlMs))),
  ]);
  if (id === null) throw new Error(`relay append to '${key}' was refused`);
  return id;
}

type XReadReply = [Buffer, [Buffer, Buffer[]][]][] | null;

export async function readRelay(
  client: Client,
  key: string,
  after: string,
  count: number,
): Promise<RelayEntry[]> {
  const reply = await client.xreadBuffer("COUNT", count, "STREAMS", key, after) as XReadReply;
  if (reply === null || reply.length === 0) return [];
  return reply[0][1].map(([id, pairs]) => {
    const fields: Record<string, string> = {};
    let data: Uint8Array | undefined;
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const name = pairs[i].toString();
      const value = pairs[i + 1];
      // A copy: the reply's buffer may be a slice of one the client reuses.
      if (name === DATA) data = new Uint8Array(value);
      else fields[name] = value.toString();
    }
    return data === undefined ? { id: id.toString(), fields } : { id: id.toString(), fields, data };
  });
}
