/** The per-request record the observing middleware, the cache and the pipeline share (not a tracing span). */

import type { RouteLabel } from "./labels.ts";

/**
 * What one request went through, shared by the observing middleware and the layers that answer it: timings in
 * performance.now() milliseconds, and what served the answer.
 */
export interface RequestTrace {
  readonly startedAt: number;
  /** Time spent waiting on upstreams (every attempt), added by the pipeline. */
  upstreamMs: number;
  /** Time spent waiting for an endpoint to come back, added by the pipeline. */
  waitMs: number;
  /**
   * Set by the HTTP edge (`http/respond.ts`) as it writes the same facts and `x-request-id` into the answer's
   * headers. Observing reads them here: reading a Response's headers would throw away the native copy Deno
   * prepared to serve it with, and cost a rebuild on every request.
   */
  served?: ServedBy;
  /** The parsed JSON of a whole upstream answer, as the edge served it (tracing reads model, id and usage). */
  answer?: unknown;
  /** Who sent the request (admission's identity: a key's name), noted for tracing by its usage sink. */
  keyName?: string;
}

/**
 * Milliseconds the request has spent in the proxy itself by `now`: the time since it arrived minus the time spent
 * waiting on upstreams and for capacity. Never negative.
 */
export const overheadMs = (trace: RequestTrace, now: number): number =>
  Math.max(0, now - trace.startedAt - trace.upstreamMs - trace.waitMs);

/** `x-llmproxy-overhead-ms`: the overhead so far, to a tenth of a millisecond. */
export const overheadHeader = (trace: RequestTrace, now: number): string =>
  (Math.round(overheadMs(trace, now) * 10) / 10).toFixed(1);

export interface ServedBy {
  readonly endpoint: string;
  readonly attempts: number;
  /** The `x-llmproxy-cache` verdict, when a cache layer was in front. */
  readonly cache: string | null;
}

/** What the observing middleware knows when a request is answered. */
export interface RequestRecord {
  readonly route: RouteLabel;
  /** Configured model group, or "" when the request never got that far. */
  readonly group: string;
  /** Endpoint id from `x-llmproxy-endpoint`, or "". */
  readonly endpoint: string;
  readonly status: number;
  /** `x-llmproxy-cache` value, or null. */
  readonly cache: string | null;
  readonly seconds: number;
  /** Seconds spent in the proxy itself (total minus upstream time and capacity waits); null when unknown. */
  readonly overheadSeconds: number | null;
}
