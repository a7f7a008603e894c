/**
 * Bounded label values for the proxy's series: route names, cache results and failover reasons. An unknown path or
 * verdict maps to a fixed fallback, so client input never creates a series of its own.
 */

/** Route names for labels: a fixed set, so an unknown path never creates a series of its own. */
export type RouteLabel =
  | "chat"
  | "responses"
  | "responses_item"
  | "embeddings"
  | "models"
  | "health"
  | "stats"
  | "metrics"
  | "cache"
  | "files"
  | "batches"
  | "audio"
  | "images"
  | "moderations"
  | "realtime"
  | "ui"
  | "other";

const ROUTE_LABELS: Readonly<Record<string, RouteLabel>> = {
  "/chat/completions": "chat",
  "/responses": "responses",
  "/embeddings": "embeddings",
  "/models": "models",
  "/health": "health",
  "/stats": "stats",
  "/metrics": "metrics",
  "/cache": "cache",
  "/moderations": "moderations",
  "/realtime": "realtime",
};

/**
 * Route families with ids or sub-routes: the first segment names them. A Map, not an object literal: a segment such
 * as `constructor` or `toString` would find what every object inherits and make a series of its own (the keys
 * above all start with `/`, which nothing inherited does).
 */
const FAMILY_LABELS: ReadonlyMap<string, RouteLabel> = new Map([
  ["models", "models"],
  ["files", "files"],
  ["batches", "batches"],
  ["audio", "audio"],
  ["images", "images"],
  ["ui", "ui"],
]);

/** The route label of a request path, with or without `/v1`. */
export function routeLabel(path: string): RouteLabel {
  const rest = path.startsWith("/v1/") ? path.slice(3) : path;
  const known = ROUTE_LABELS[rest];
  if (known) return known;
  if (rest.startsWith("/responses/")) return "responses_item";
  return FAMILY_LABELS.get(rest.split("/")[1]) ?? "other";
}

export const CACHE_RESULTS: Readonly<Record<string, string>> = {
  HIT: "hit",
  MISS: "miss",
  COALESCED: "coalesced",
  BYPASS: "bypass",
};

const FAILOVER_STATUSES = [401, 403, 404, 408, 429, 500, 502, 503, 504] as const;
const FAILOVER_STATUS_SET: ReadonlySet<number> = new Set(FAILOVER_STATUSES);

/**
 * Every reason a failover can be labelled with: the failover statuses, a class for any other status, and the
 * outcomes without one. A fixed set, each at 0 per endpoint from the start (`ProxyMetrics.known`).
 */
export const FAILOVER_REASONS = [
  ...FAILOVER_STATUSES.map((status) => `http_${status}` as const),
  "http_3xx",
  "http_4xx",
  "http_5xx",
  "timeout",
  "connection",
  "malformed",
  "content_filter",
] as const;

/** Why an attempt moved on, as a bounded label. */
export type FailoverReason = (typeof FAILOVER_REASONS)[number];

/** Whether an upstream status is the endpoint's failure (it moves a request on), not the caller's. */
export const isEndpointFailure = (status: number): boolean =>
  status >= 500 || FAILOVER_STATUS_SET.has(status);

/** A bounded reason label for a failed attempt. */
export function failoverReason(
  outcome: { kind: "status"; status: number } | { kind: "timeout" | "malformed" | "connection" },
): FailoverReason {
  if (outcome.kind !== "status") return outcome.kind;
  const { status } = outcome;
  if (FAILOVER_STATUS_SET.has(status)) return `http_${status as (typeof FAILOVER_STATUSES)[number]}`;
  return status >= 500 ? "http_5xx" : status >= 400 ? "http_4xx" : "http_3xx";
}
