/**
 * The proxy's own Prometheus series, all prefixed `llmproxy_`. Labels come only from bounded sets: configured model
 * groups and endpoint ids, HTTP status codes, fixed route and reason names; never request ids or client text.
 *
 * One middleware records every request (`request`); the pipeline, the balancer and the health tracker add what only
 * they see (upstream latency, time to first token, failovers, retries, cooldowns, capacity waits). Series that
 * describe shared state (cooling down, store up) are set when `/metrics` is scraped.
 */

import type { EndpointConfig, GroupConfig } from "../config/config.ts";
import { VERSION } from "../version.ts";
import { CACHE_RESULTS, FAILOVER_REASONS, type FailoverReason } from "./labels.ts";
import { RecentWindows } from "./recent.ts";
import { Counter, Gauge, Histogram, type LabelValue, Registry } from "./registry.ts";
import type { RequestRecord } from "./request_trace.ts";
import { RoutingSeries } from "./routing_series.ts";

export { type FailoverReason, failoverReason, type RouteLabel, routeLabel } from "./labels.ts";
export type { RequestRecord, RequestTrace, ServedBy } from "./request_trace.ts";

/** Seconds: 1 ms .. 5 min, for upstream calls and whole requests. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Seconds: 50 us .. 1 s, for the proxy's own work. */
const OVERHEAD_BUCKETS = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  1,
];
const COOLDOWN_REASONS = ["failures", "rate_limit"] as const;
const RELOAD_RESULTS = ["success", "failure"] as const;
/** The routes whose answers the cache serves (the `route` label of `llmproxy_cache_requests_total`). */
const CACHED_ROUTES = ["chat", "responses", "embeddings"] as const;

/** Seconds: 10 ms .. 30 s, for waits on capacity. */
const WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly startedAt = Date.now();
  /** Rolling per-endpoint histories for the `/ui` dashboard (fed by the upstream client's observer). */
  readonly recent = new RecentWindows();
  /** Each endpoint's tier, in-flight count and latency average, set at scrape time. */
  readonly routing = new RoutingSeries(this.registry);

  readonly #requests = this.registry.register(
    new Counter("llmproxy_requests_total", "Requests answered, by route, model group, endpoint and status", [
      "route",
      "group",
      "endpoint",
      "status",
    ]),
  );
  readonly #duration = this.registry.register(
    new Histogram(
      "llmproxy_request_duration_seconds",
      "Time from receiving a request to starting the answer (for streams: to the first upstream chunk)",
      ["route"],
      LATENCY_BUCKETS,
    ),
  );
  readonly #overhead = this.registry.register(
    new Histogram(
      "llmproxy_proxy_overhead_seconds",
      "Time a request spent in the proxy itself: total minus upstream time and capacity waits",
      ["route"],
      OVERHEAD_BUCKETS,
    ),
  );
  readonly #inFlight = this.registry.register(
    new Gauge(
      "llmproxy_requests_in_flight",
      "Requests being handled now (streams count until their answer starts)",
    ),
  );
  readonly #upstream = this.registry.register(
    new Histogram(
      "llmproxy_upstream_latency_seconds",
      "Time from sending an attempt upstream to its response headers, every attempt that got an HTTP answer",
      ["group", "endpoint"],
      LATENCY_BUCKETS,
    ),
  );
  readonly #firstToken = this.registry.register(
    new Histogram(
      "llmproxy_time_to_first_token_seconds",
      "Streams: time from receiving the request to the first upstream chunk",
      ["group", "endpoint"],
      LATENCY_BUCKETS,
    ),
  );
  readonly #cache = this.registry.register(
    new Counter("llmproxy_cache_requests_total", "Cache outcome of answered requests (x-llmproxy-cache)", [
      "route",
      "result",
    ]),
  );
  readonly #failovers = this.registry.register(
    new Counter(
      "llmproxy_failovers_total",
      "Attempts that failed in a way that moves the request to another endpoint",
      [
        "group",
        "endpoint",
        "reason",
      ],
    ),
  );
  readonly #retries = this.registry.register(
    new Counter("llmproxy_retries_total", "Attempts after the first one of a request", ["group"]),
  );
  readonly #cooldowns = this.registry.register(
    new Counter("llmproxy_cooldowns_total", "Cooldowns started (or extended) by this instance", [
      "group",
      "endpoint",
      "reason",
    ]),
  );
  readonly #coolingDown = this.registry.register(
    new Gauge(
      "llmproxy_endpoint_cooling_down",
      "1 while the endpoint is cooling down (shared state, read at scrape)",
      [
        "group",
        "endpoint",
      ],
    ),
  );
  readonly #waits = this.registry.register(
    new Histogram(
      "llmproxy_capacity_wait_seconds",
      "Waits of requests for an endpoint to come back (cooldown or rate-limit budget) before trying it",
      ["group"],
      WAIT_BUCKETS,
    ),
  );
  readonly #storeUp = this.registry.register(
    new Gauge(
      "llmproxy_store_up",
      "1 while the state store answers, 0 while the proxy serves from local state",
      [
        "kind",
      ],
    ),
  );
  readonly #connectionsOpened = this.registry.register(
    new Counter(
      "llmproxy_upstream_connections_opened_total",
      "Upstream connections opened by the http1 client (read at scrape; 0 with upstream_client: fetch)",
    ),
  );
  readonly #connectionsIdle = this.registry.register(
    new Gauge(
      "llmproxy_upstream_connections_idle",
      "Kept-alive upstream connections waiting for reuse (http1 client; read at scrape)",
    ),
  );
  readonly #reloads = this.registry.register(
    new Counter("llmproxy_config_reloads_total", "Config reloads (SIGHUP) by result", ["result"]),
  );
  readonly #info = this.registry.register(
    new Gauge("llmproxy_build_info", "Always 1; the version is a label", ["version"]),
  );
  readonly #started = this.registry.register(
    new Gauge("llmproxy_start_time_seconds", "Unix time the process started"),
  );

  constructor() {
    this.#info.set([VERSION], 1);
    this.#started.set([], Math.floor(this.startedAt / 1000));
  }

  /**
   * Series at 0 for the label values known from `config`, so dashboards and alerts see them (and the first event's
   * increase) before any traffic: each endpoint's failover reasons and cooldown reasons, each group's retries, the
   * cache results of the cached routes, the reload results. Kept bounded across reloads: zeros of groups and
   * endpoints no longer configured are forgotten (a series that counted something stays, as Prometheus wants).
   */
  known(config: { groups: readonly GroupConfig[]; settings: { cache: boolean } }): void {
    const endpoints = new Set<string>();
    for (const group of config.groups) {
      this.#retries.labels(group.name);
      for (const endpoint of group.endpoints) {
        endpoints.add(`${group.name}\n${endpoint.id}`);
        for (const reason of FAILOVER_REASONS) this.#failovers.labels(group.name, endpoint.id, reason);
        for (const reason of COOLDOWN_REASONS) this.#cooldowns.labels(group.name, endpoint.id, reason);
      }
    }
    const groups = new Set(config.groups.map((group) => group.name));
    const gone = (values: readonly LabelValue[]) => !endpoints.has(`${values[0]}\n${values[1]}`);
    this.#failovers.forgetZeros(gone);
    this.#cooldowns.forgetZeros(gone);
    this.#retries.forgetZeros((values) => !groups.has(String(values[0])));
    if (config.settings.cache) {
      for (const route of CACHED_ROUTES) {
        for (const result of Object.values(CACHE_RESULTS)) this.#cache.labels(route, result);
      }
    }
    for (const result of RELOAD_RESULTS) this.#reloads.labels(result);
  }

  requestStarted(): void {
    this.#inFlight.labels().value++;
  }

  request(record: RequestRecord): void {
    this.#inFlight.labels().value--;
    this.#requests.labels(record.route, record.group, record.endpoint, record.status).value++;
    this.#duration.observeSeries(this.#duration.labels(record.route), record.seconds);
    if (record.overheadSeconds !== null) {
      this.#overhead.observeSeries(this.#overhead.labels(record.route), Math.max(0, record.overheadSeconds));
    }
    if (record.cache !== null) {
      this.#cache.labels(record.route, CACHE_RESULTS[record.cache.toUpperCase()] ?? "other").value++;
    }
  }

  upstreamLatency(endpoint: EndpointConfig, seconds: number): void {
    this.#upstream.observeSeries(this.#upstream.labels(endpoint.group, endpoint.id), seconds);
  }

  firstToken(endpoint: EndpointConfig, seconds: number): void {
    this.#firstToken.observeSeries(this.#firstToken.labels(endpoint.group, endpoint.id), seconds);
  }

  failover(endpoint: EndpointConfig, reason: FailoverReason): void {
    this.#failovers.labels(endpoint.group, endpoint.id, reason).value++;
  }

  retry(group: string): void {
    this.#retries.labels(group).value++;
  }

  cooldown(endpoint: EndpointConfig, reason: (typeof COOLDOWN_REASONS)[number]): void {
    this.#cooldowns.labels(endpoint.group, endpoint.id, reason).value++;
  }

  capacityWait(group: string, seconds: number): void {
    this.#waits.observeSeries(this.#waits.labels(group), seconds);
  }

  configReload(result: (typeof RELOAD_RESULTS)[number]): void {
    this.#reloads.labels(result).value++;
  }

  /** Sets the series read from shared state, then writes everything. */
  render(shared: {
    storeKind: string;
    storeUp: boolean;
    coolingDown: readonly { group: string; endpoint: string; cooling: boolean }[];
    upstreamConnections: { opened: number; idle: number };
  }): string {
    this.#connectionsOpened.labels().value = shared.upstreamConnections.opened;
    this.#connectionsIdle.set([], shared.upstreamConnections.idle);
    this.#storeUp.reset();
    this.#storeUp.set([shared.storeKind], shared.storeUp ? 1 : 0);
    this.#coolingDown.reset();
    for (const entry of shared.coolingDown) {
      this.#coolingDown.set([entry.group, entry.endpoint], entry.cooling ? 1 : 0);
    }
    return this.registry.render();
  }
}
