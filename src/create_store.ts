/**
 * createStore(config): the one place that picks the memory or the Redis store (with the local fallback while
 * Redis is away) for `buildServices` (services.ts), and bounds what the memory store keeps.
 */

import { CACHE_PREFIX } from "./cache/cache.ts";
import type { Clock } from "./core/clock.ts";
import type { Config } from "./config/config.ts";
import { OWNER_PREFIX } from "./keys/owners.ts";
import type { Logger } from "./logger.ts";
import { AFFINITY_PREFIX, ANCESTORS_PREFIX, BLOB_PREFIX, TURN_PREFIX } from "./responses/affinity.ts";
import { type BoundedArea, MemoryStore } from "./store/memory.ts";
import type { Store } from "./store/store.ts";
import { OBJECT_PREFIX } from "./surface/affinity.ts";
import { CURSOR_PREFIX } from "./surface/list_cursors.ts";

/** Bytes a record of ids and names (an endpoint, an owner) counts on average: ids and names are short. */
const ID_BYTES = 256;

/**
 * What this process keeps of the Responses API (the memory store, or the local state while Redis is away): each
 * response's endpoint, owner and turn, and each reasoning blob's endpoint, at most `maxEntries` of each, least
 * recently used out first, so a proxy serving the Responses API for hours keeps a bounded copy. The turns are
 * bounded to 64 MiB too; the rest to `ID_BYTES` a record on average.
 * A response whose owner went is unknown to every key (`keys/owners.ts`), whatever else is still held.
 */
function responsesInMemory(maxEntries: number): BoundedArea[] {
  return [
    { prefix: TURN_PREFIX, maxEntries, maxBytes: 64 * 1024 * 1024 },
    { prefix: ANCESTORS_PREFIX, maxEntries, maxBytes: 64 * 1024 * 1024 },
    ...[AFFINITY_PREFIX, OWNER_PREFIX, BLOB_PREFIX].map((prefix) => ({
      prefix,
      maxEntries,
      maxBytes: maxEntries * ID_BYTES,
    })),
  ];
}

/**
 * Files' and batches' records (where each is, whose it is: 30 days each), at most `records`, and list cursors (an
 * hour each), at most `cursors` and 1 KiB of key and value each on average (a group's resources each add one to a
 * cursor), least recently used out first in each area, so no client grows the process by making objects or pages,
 * and paging never pushes out a file's record. A record pushed out is an object the proxy does not know: a client
 * key gets 404 for it, as for one past its 30 days; others have it looked for on the group's endpoints.
 */
function objectsInMemory(records: number, cursors: number): BoundedArea[] {
  return [
    { prefix: OBJECT_PREFIX, maxEntries: records, maxBytes: records * ID_BYTES },
    { prefix: CURSOR_PREFIX, maxEntries: cursors, maxBytes: cursors * 1024 },
  ];
}

/** The store requests use, and the shared store alone (Redis without the local fallback) for runtime keys. */
export async function createStore(
  config: Config,
  logger: Logger,
  clock: Clock,
): Promise<{ store: Store; shared: Store }> {
  const { settings } = config;
  const local = new MemoryStore({
    namespace: settings.namespace,
    now: clock.now,
    bounded: [
      { prefix: CACHE_PREFIX, maxEntries: settings.cacheMaxEntries, maxBytes: settings.cacheMaxBytes },
      ...responsesInMemory(settings.responseAffinityMaxEntries),
      ...objectsInMemory(settings.objectRecordsMaxEntries, settings.listCursorsMaxEntries),
    ],
  });
  if (!settings.redis) return { store: local, shared: local };
  // Loaded only when Redis is configured: ioredis alone adds ~27 MiB to an in-memory proxy's resident memory, and
  // the local fallback with its outage tracking (~6 KB of the bundle) serves nothing without it.
  const [{ RedisStore }, { FallbackStore }] = await Promise.all([
    import("./store/redis.ts"),
    import("./store/fallback.ts"),
  ]);
  const redis = await RedisStore.connect({
    ...settings.redis,
    clusterNodes: settings.redis.clusterNodes ? [...settings.redis.clusterNodes] : undefined,
    namespace: settings.namespace,
    now: clock.now,
    logger: (level, message, fields) => logger.log(level, message, fields),
  });
  const store = new FallbackStore({
    primary: redis,
    // A Responses record made during an outage, merged back so a continuation finds its endpoint on any instance.
    mergeBack: [AFFINITY_PREFIX, TURN_PREFIX, ANCESTORS_PREFIX, BLOB_PREFIX, OWNER_PREFIX],
    waitMs: settings.redis.maxWaitMs,
    local,
    logger: (level, message, fields) => logger.log(level, message, fields),
  });
  return { store, shared: redis };
}
