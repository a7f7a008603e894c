/**
 * How many upstream connections the HTTP/1.1 client (`http1.ts`) may keep open for reuse, from the process's
 * open-file limit: the descriptors that the client-connection cap (`general_settings.max_connections`, by default
 * half the limit less 32) leaves, less a reserve for the process's own (listeners, Redis, logs). A connection whose
 * answer has ended is parked only while the client's open connections, in use and parked, stay within it, so
 * parked connections never take descriptors that accepting clients may need.
 */

import { defaultMaxConnections, FALLBACK_MAX_CONNECTIONS } from "../serve/fd_limit.ts";

/** Descriptors kept for the process's own files and sockets, beyond client and upstream connections. */
const RESERVE = 64;
/** At most this many, however high the limit (as the client-connection cap). */
const MOST = 65_536;
/** At least this many, however low the limit. */
const LEAST = 16;

/** `limit`: the open-file limit (undefined when unknown); `maxConnections`: the configured client cap, if set. */
export function upstreamConnectionBudget(limit: number | undefined, maxConnections?: number): number {
  if (limit === undefined) return FALLBACK_MAX_CONNECTIONS;
  if (!Number.isFinite(limit)) return MOST;
  const clients = maxConnections ?? defaultMaxConnections(limit);
  return Math.min(MOST, Math.max(LEAST, limit - clients - RESERVE));
}
