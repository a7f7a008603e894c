/** The server's options from the resolved settings: limits, the derived connection cap, and where trouble is logged. */

import type { Limits } from "../config/limits.ts";
import type { Logger } from "../logger.ts";
import { defaultMaxConnections, openFileLimit } from "./fd_limit.ts";
import type { ServeOptions, Trouble } from "./server.ts";

const TROUBLE_MESSAGES: Readonly<Record<Trouble["kind"], string>> = {
  out_of_descriptors: "out of file descriptors: not accepting new connections until some close",
  max_connections: "max_connections reached: new client connections refused",
  accept_failed: "accepting a connection failed",
};

/**
 * On Linux, Deno lets a process read `/proc/self/limits` only under `--allow-all`, which the tasks and the binary
 * do not grant: there the cap is the fallback, whatever `ulimit -n` (or systemd's `LimitNOFILE`) allows.
 */
const UNREAD_LIMIT = "the open-file limit could not be read (on Linux, Deno allows /proc/self/limits only " +
  "under --allow-all), so max_connections is the fallback; set general_settings.max_connections to use more";

export function serveOptions(
  where: { hostname: string; port: number; reusePort?: boolean; onListen?: (addr: Deno.NetAddr) => void },
  limits: Limits,
  logger: Logger,
): ServeOptions {
  const fdLimit = openFileLimit();
  const maxConnections = limits.maxConnections ?? defaultMaxConnections(fdLimit);
  logger.info("client connection limits", {
    max_connections: maxConnections,
    open_file_limit: fdLimit === undefined || !Number.isFinite(fdLimit) ? null : fdLimit,
    ...(fdLimit === undefined && limits.maxConnections === undefined ? { note: UNREAD_LIMIT } : {}),
    keepalive_timeout_s: limits.keepaliveTimeoutMs / 1000,
    header_timeout_s: limits.headerTimeoutMs / 1000,
  });
  return {
    ...where,
    maxConnections,
    keepaliveTimeoutMs: limits.keepaliveTimeoutMs,
    headerTimeoutMs: limits.headerTimeoutMs,
    onTrouble: (trouble) =>
      logger.warn(TROUBLE_MESSAGES[trouble.kind], {
        times: trouble.count,
        open_connections: trouble.open,
        max_connections: maxConnections,
        ...(trouble.message ? { error: trouble.message } : {}),
      }),
  };
}
