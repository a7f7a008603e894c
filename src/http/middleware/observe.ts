/**
 * Observes every answered request once: one access-log line (info; `/health` and `/metrics` at debug) and the
 * request series of `/metrics`. It reads what the route left behind: the model group (context), the endpoint,
 * attempts and cache outcome (response headers `x-llmproxy-*`), and the upstream time the pipeline added to the
 * request's timing. For streams the figures are taken when the answer starts (after the first upstream chunk).
 */

import type { MiddlewareHandler } from "hono";
import type { Logger } from "../../logger.ts";
import { type ProxyMetrics, type RequestTiming, routeLabel } from "../../metrics/metrics.ts";

export interface ObserveOptions {
  readonly metrics: ProxyMetrics;
  readonly logger: Logger;
  readonly now?: () => number;
}

type ObserveEnv = { Variables: { requestId: string; group: string; timing: RequestTiming } };

/** Longest path written to the log (unknown routes may be long). */
const MAX_LOGGED_PATH = 200;

const round = (ms: number) => Math.round(ms * 10) / 10;

export function observe(options: ObserveOptions): MiddlewareHandler<ObserveEnv> {
  const { metrics, logger } = options;
  const now = options.now ?? (() => performance.now());
  return async (c, next) => {
    const timing: RequestTiming = { startedAt: now(), upstreamMs: 0, waitMs: 0 };
    c.set("timing", timing);
    metrics.requestStarted();
    try {
      await next();
    } finally {
      const elapsedMs = now() - timing.startedAt;
      const headers = c.res.headers;
      const status = c.res.status;
      const path = c.req.path;
      const route = routeLabel(path);
      const group = c.get("group") ?? "";
      const endpoint = headers.get("x-llmproxy-endpoint") ?? "";
      const cache = headers.get("x-llmproxy-cache");
      const attempts = headers.get("x-llmproxy-attempts");
      // Overhead only means something for requests that went through the pipeline (or the cache).
      const overheadMs = group !== "" ? Math.max(0, elapsedMs - timing.upstreamMs - timing.waitMs) : null;
      metrics.request({
        route,
        group,
        endpoint,
        status,
        cache,
        seconds: elapsedMs / 1000,
        overheadSeconds: overheadMs === null ? null : overheadMs / 1000,
      });
      const level = route === "health" || route === "metrics" ? "debug" : "info";
      if (logger.enabled(level)) {
        logger.log(level, "request", {
          request_id: c.get("requestId"),
          method: c.req.method,
          path: path.length > MAX_LOGGED_PATH ? `${path.slice(0, MAX_LOGGED_PATH)}...` : path,
          group: group || null,
          endpoint: endpoint || null,
          status,
          attempts: attempts === null ? null : Number(attempts),
          cache,
          latency_ms: round(elapsedMs),
          upstream_ms: group !== "" ? round(timing.upstreamMs) : null,
          overhead_ms: overheadMs === null ? null : round(overheadMs),
        });
      }
    }
  };
}
