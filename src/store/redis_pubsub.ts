/**
 * Messages between instances over Redis pub/sub, for changes every instance must see at once (runtime keys). The
 * subscription has its own connection (a subscribed connection can run no other command), so it never holds up
 * the auto-pipelined commands of requests. After every (re)connect the listener is called with null: messages may
 * have been missed while the connection was down, so the listener reads the current state again.
 */

import type { Cluster, Redis } from "ioredis";

type Client = Redis | Cluster;

/** Subscribes to `channel` on a new connection like `client`'s; the returned function closes it. */
export function subscribeOnRedis(
  client: Client,
  channel: string,
  onMessage: (message: string | null) => void,
): () => Promise<void> {
  const subscriber = client.duplicate();
  subscriber.on("error", () => {}); // the main connection reports outages
  subscriber.on("ready", () => {
    subscriber.subscribe(channel).then(() => onMessage(null), () => {});
  });
  subscriber.on("message", (from: string, message: string) => {
    if (from === channel) onMessage(message);
  });
  // The store's clients are made with lazyConnect (see redis_client.ts), and a duplicate inherits it.
  if (subscriber.status === "wait") subscriber.connect().catch(() => {});
  return async () => {
    if (subscriber.status === "end") return;
    // Between reconnect attempts there is no socket: ioredis clears its timer but never emits "end".
    const waiting = subscriber.status !== "reconnecting" && subscriber.status !== "wait";
    const ended = new Promise<void>((resolve) => subscriber.once("end", () => resolve()));
    subscriber.disconnect();
    if (waiting) await ended;
  };
}
