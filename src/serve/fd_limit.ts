/**
 * The process's open-file limit (`ulimit -n`), read from `/proc/self/limits` on Linux, and the client-connection
 * cap derived from it when `general_settings.max_connections` is unset.
 */

/** The soft limit on open files, or undefined where it cannot be read (not Linux, no permission). */
export function openFileLimit(read: (path: string) => string = Deno.readTextFileSync): number | undefined {
  try {
    const match = read("/proc/self/limits").match(/^Max open files\s+(\d+|unlimited)/m);
    if (!match) return undefined;
    return match[1] === "unlimited" ? Infinity : Number(match[1]);
  } catch {
    return undefined;
  }
}

/** Used when the limit cannot be read. */
export const FALLBACK_MAX_CONNECTIONS = 1024;

/**
 * Half of the descriptors for client connections: each proxied request may hold one to an upstream as well, and
 * the process keeps a few dozen for itself (listeners, Redis, logs). At least 16, at most 65,536.
 */
export function defaultMaxConnections(limit: number | undefined): number {
  if (limit === undefined) return FALLBACK_MAX_CONNECTIONS;
  if (!Number.isFinite(limit)) return 65_536;
  return Math.min(65_536, Math.max(16, Math.floor(limit / 2) - 32));
}
