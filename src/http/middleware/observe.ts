/**
 * The front door of every request: gives it an id (a sane client `x-request-id` is echoed, else one is made up;
 * every answer carries it), and observes it once answered: one access-log line (info; `/health`, `/metrics` and
 * `/ui` at debug) and the request series of `/metrics`. It reads what the route left behind: the model group (context),
 * what served the answer and the upstream time (the request's trace, filled by the pipeline and the cache; for
 * other routes the `x-llmproxy-*` response headers). For streams the figures are taken when the answer starts
 * (after the first upstream chunk).
 */

import type { Middleware, RequestContext } from "../request_context.ts";
import type { Logger } from "../../logger.ts";
import { type ProxyMetrics, type RequestTrace, routeLabel, type ServedBy } from "../../metrics/metrics.ts";
import { overheadMs } from "../../metrics/request_trace.ts";

export interface ObserveOptions {
  readonly metrics: ProxyMetrics;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly generateId?: () => string;
}

type ObserveEnv = { Variables: { requestId: string; group: string; trace: RequestTrace } };

/** Longest path written to the log (unknown routes may be long). */
const MAX_LOGGED_PATH = 200;

const SAFE_ID = /^[\w.:@-]{1,128}$/;

const round = (ms: number) => Math.round(ms * 10) / 10;

/** What served an answer that no layer traced (info routes, errors): its own headers say. */
function servedFromHeaders(headers: Headers): ServedBy {
  const attempts = headers.get("x-llmproxy-attempts");
  return {
    endpoint: headers.get("x-llmproxy-endpoint") ?? "",
    attempts: attempts === null ? NaN : Number(attempts),
    cache: headers.get("x-llmproxy-cache"),
  };
}

export function observe<E extends ObserveEnv = ObserveEnv>(options: ObserveOptions): Middleware<E> {
  const { metrics, logger } = options;
  const now = options.now ?? (() => performance.now());
  const generateId = options.generateId ?? (() => crypto.randomUUID());
  /** The request is answered: its access-log line and its series. */
  const observed = (c: RequestContext<E>, trace: RequestTrace, requestId: string): void => {
    const elapsedMs = now() - trace.startedAt;
    // An answer built by the pipeline or the cache carries the id already, and its headers are left untouched.
    // An error answer (c.error) was built by the error handler, whatever the trace says.
    let served = c.error ? undefined : trace.served;
    if (!served) {
      c.res.headers.set("x-request-id", requestId);
      served = servedFromHeaders(c.res.headers);
    }
    const status = c.res.status;
    const path = c.req.path;
    const route = routeLabel(path);
    const group = c.get("group") ?? "";
    const { endpoint, cache } = served;
    // Overhead only means something for requests that went through the pipeline (or the cache).
    const overhead = group !== "" ? overheadMs(trace, trace.startedAt + elapsedMs) : null;
    metrics.request({
      route,
      group,
      endpoint,
      status,
      cache,
      seconds: elapsedMs / 1000,
      overheadSeconds: overhead === null ? null : overhead / 1000,
    });
    const level = route === "health" || route === "metrics" || route === "ui" ? "debug" : "info";
    if (logger.enabled(level)) {
      logger.log(level, "request", {
        request_id: requestId,
        method: c.req.method,
        path: path.length > MAX_LOGGED_PATH ? `${path.slice(0, MAX_LOGGED_PATH)}...` : path,
        group: group || null,
        endpoint: endpoint || null,
        status,
        attempts: Number.isNaN(served.attempts) ? null : served.attempts,
        cache,
        latency_ms: round(elapsedMs),
        upstream_ms: group !== "" ? round(trace.upstreamMs) : null,
        overhead_ms: overhead === null ? null : round(overhead),
      });
    }
  };
  // Not async: a request waits in the rest of the chain, holding two callbacks here rather than a frame.
  return (c, next) => {
    const trace: RequestTrace = { startedAt: now(), upstreamMs: 0, waitMs: 0 };
    const given = c.req.header("x-request-id");
    const requestId = given && SAFE_ID.test(given) ? given : generateId();
    c.set("requestId", requestId);
    c.set("trace", trace);
    metrics.requestStarted();
    let answered: Promise<unknown>;
    try {
      answered = next();
    } catch (error) {
      observed(c, trace, requestId);
      throw error;
    }
    return answered.then(() => observed(c, trace, requestId), (error) => {
      observed(c, trace, requestId);
      throw error;
    });
  };
}
