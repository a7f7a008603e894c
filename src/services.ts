/**
 * buildServices(config): wires the services together over the store that create_store.ts picks (memory or Redis;
 * the only place that picks it).
 */

import { Balancer } from "./balancer/balancer.ts";
import { type Clock, systemClock } from "./core/clock.ts";
import { ResponseCache } from "./cache/cache.ts";
import type { Config } from "./config/config.ts";
import { EntraTokens } from "./entra/entra_tokens.ts";
import type { HealthProber, ProberOptions } from "./health/prober.ts";
import { HealthTracker } from "./health/tracker.ts";
import { keyAdmission } from "./keys/admission.ts";
import { fileRefAdmission } from "./keys/file_refs.ts";
import { FileRouting } from "./surface/file_route.ts";
import { KeyLimits } from "./keys/limits.ts";
import { ResponseOwners } from "./keys/owners.ts";
import { KeyRegistry } from "./keys/registry.ts";
import { ANONYMOUS } from "./keys/schema.ts";
import type { Logger } from "./logger.ts";
import { ProxyMetrics } from "./metrics/metrics.ts";
import { BodyPool } from "./http/body_pool.ts";
import { recentObserver } from "./metrics/recent.ts";
import { Attempts } from "./proxy/attempts.ts";
import type { Telemetry } from "./telemetry/telemetry.ts";
import { observeAll } from "./upstream/attempt.ts";
import { Pipeline } from "./proxy/pipeline.ts";
import { Stats } from "./proxy/stats.ts";
import { Budgets } from "./ratelimit/budget.ts";
import { createStore } from "./create_store.ts";
import { UpstreamLimits } from "./ratelimit/upstream_limits.ts";
import { ResponseAffinity } from "./responses/affinity.ts";
import { ResponsesLayer } from "./responses/layer.ts";
import type { Store } from "./store/store.ts";
import { ObjectAffinity } from "./surface/affinity.ts";
import { RealtimeSessions } from "./surface/realtime.ts";
import { UpstreamClient } from "./upstream/client.ts";
import { upstreamConnectionBudget } from "./upstream/connection_budget.ts";
import { openFileLimit } from "./serve/fd_limit.ts";
import { UsageLedger } from "./usage/ledger.ts";
import { countsUsage, usageSink } from "./usage/sink.ts";

export interface Services {
  readonly config: Config;
  readonly store: Store;
  readonly health: HealthTracker;
  readonly balancer: Balancer;
  readonly pipeline: Pipeline;
  readonly affinity: ResponseAffinity;
  readonly responses: ResponsesLayer;
  readonly upstream: UpstreamClient;
  readonly stats: Stats;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly budgets: Budgets;
  readonly limits: UpstreamLimits;
  /** The `/metrics` series; kept across config reloads. */
  readonly metrics: ProxyMetrics;
  /** Active health probes, when `health_probe_interval` is set. */
  readonly prober?: HealthProber;
  /** The answer cache in front of the pipeline; its counters are kept across config reloads. */
  readonly cache: ResponseCache;
  /** OpenTelemetry spans and GenAI metrics; undefined when tracing is off. */
  readonly telemetry?: Telemetry;
  /** Which endpoint holds each file and batch. */
  readonly objects: ObjectAffinity;
  /** Realtime WebSocket sessions being relayed; kept across config reloads. */
  readonly realtime: RealtimeSessions;
  /** Client and admin keys with their policies; runtime keys kept across config reloads. */
  readonly keys: KeyRegistry;
  /** Per-key limits and budgets over the store. */
  readonly keyLimits: KeyLimits;
  /** Usage and cost per key, model group and endpoint. */
  readonly usage: UsageLedger;
  /** Request body bytes held in memory, JSON bodies and uploads (`max_inflight_body_bytes`); kept across reloads. */
  readonly bodyPool: BodyPool;
  /**
   * Applies what this build shares with the one it replaces, in one synchronous step: the config's keys, usage
   * settings, zero series, body bound and upstream limits; then starts its probes. A first build is active when
   * built; a reload's (`LiveApp`) when it goes live, so a build that fails changes nothing of the live one.
   */
  activate(): void;
  /**
   * A reload's build that does not go live: closes what it opened for itself (its upstream client, when the
   * client kind changed; its probes, never started), leaving what it shares with the live build alone.
   */
  discard(): Promise<void>;
  close(): Promise<void>;
}

/** Largest conversation turn kept for Responses failover replay. */
const MAX_TURN_BYTES = 1024 * 1024;
export interface ServiceOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  /**
   * The services this build replaces (a config reload): their store, per-endpoint stats, observed rate limits,
   * metrics and upstream connections are reused, so the state of endpoints whose id did not change survives.
   * Store settings of the new config are then not applied.
   */
  readonly previous?: Services;
  /** Trace requests with OpenTelemetry (`tracingWanted`); read at the first build, kept across reloads. */
  readonly tracing?: boolean;
}

export async function buildServices(config: Config, options: ServiceOptions): Promise<Services> {
  // What a build opens for itself is closed when it fails before it is whole.
  const opened: { close(): void }[] = [];
  try {
    return await build(config, options, opened);
  } catch (error) {
    for (const resource of opened) resource.close();
    throw error;
  }
}

async function build(
  config: Config,
  options: ServiceOptions,
  opened: { close(): void }[],
): Promise<Services> {
  const { settings } = config;
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const { previous } = options;
  const stores = previous ? undefined : await createStore(config, logger, clock);
  const store = previous?.store ?? stores!.store;
  const metrics = previous?.metrics ?? new ProxyMetrics();
  const health = new HealthTracker(store, settings, clock.now, logger, metrics);
  const budgets = new Budgets(store, { now: clock.now, logger });
  const limits = previous?.limits ?? new UpstreamLimits(clock.now);
  const balancer = new Balancer(health, clock, budgets, { load: previous?.balancer.load });
  const stats = previous?.stats ?? new Stats();
  // The connection pool outlives a reload unless the client kind changed.
  const kept = previous?.upstream.kind === settings.upstreamClient ? previous.upstream : undefined;
  const telemetry = previous ? previous.telemetry : await createTelemetry(options.tracing ?? false);
  const observer = observeAll([recentObserver(metrics.recent), telemetry?.attempts]);
  // Entra ID tokens live with the client, so a reload keeps them while a credential is unchanged.
  const upstream = kept ??
    new UpstreamClient(settings.upstreamClient, observer, new EntraTokens({ logger, now: clock.now }));
  if (!kept) opened.push(upstream);
  const prober = await createProber(config, { store, health, upstream, logger, now: clock.now });
  const { maxResponseBytes, connectTimeoutMs, maxConnections } = settings.limits;
  // Read at start-up, like the client-connection cap it leaves room for: a reload keeps both.
  const maxOpenConnections = previous?.upstream.limits.maxOpenConnections ??
    upstreamConnectionBudget(openFileLimit(), maxConnections);
  if (!kept) logger.info("upstream client", { upstream_client: upstream.kind });
  if (telemetry && upstream.kind === "fetch") telemetry.warnFetchSpans(config.groups, logger);
  const affinity = new ResponseAffinity(store, {
    ttlSeconds: settings.responseAffinityTtlSeconds,
    maxTurnBytes: MAX_TURN_BYTES,
    logger,
  });
  const responses = new ResponsesLayer(
    affinity,
    settings,
    logger,
    new ResponseOwners(store, settings.responseAffinityTtlSeconds),
  );
  const cache = new ResponseCache({
    store,
    settings,
    logger,
    clock,
    counters: previous?.cache.counters,
    writes: previous?.cache.writes,
    readHealth: (group) => health.prefetch(group.endpoints),
  });
  // Runtime keys never fork onto local state while Redis is away (see keys/runtime_doc.ts).
  const keys = previous?.keys ?? new KeyRegistry(config, { store: stores!.shared, logger });
  // Runtime keys are made through admin keys: an instance without any neither reads nor follows them.
  if (!previous && keys.hasAdminKeys) await keys.refresh().catch(() => {});
  // A place among a key's max_parallel lapses by itself after the longest a request can take.
  const leaseMs = settings.httpTimeoutMs * (settings.numRetries + 1) + settings.maxWaitForCapacityMs + 60_000;
  const keyLimits = new KeyLimits(store, { now: clock.now, logger, leaseMs });
  const usage = previous?.usage ?? new UsageLedger(store, config.keys, { now: clock.now, logger });
  // The per-key series of keys no longer known (revoked, removed) are retired, scraped or not.
  if (!previous) usage.metrics.follow((key) => key === ANONYMOUS || keys.counts(key));
  const attempts = new Attempts({
    health,
    upstream,
    stats,
    logger,
    now: clock.now,
    limits,
    budgets,
    metrics,
  });
  const objects = new ObjectAffinity(store);
  const bodyPool = previous?.bodyPool ?? new BodyPool(settings.limits.maxInflightBodyBytes);
  const endpoints = new Map(
    config.groups.flatMap((group) => group.endpoints.map((endpoint) => [endpoint.id, endpoint])),
  );
  const pipeline = new Pipeline({
    settings,
    // Files named by a request are checked first: a refusal there charges nothing to the key.
    admission: [
      fileRefAdmission({ registry: keys, objects }),
      keyAdmission({ registry: keys, limits: keyLimits, metrics: usage.metrics }),
    ],
    responses,
    files: new FileRouting({ objects, endpoints, attempts, health, load: balancer.load }),
    cache,
    balancer,
    budgets,
    attempts,
    health,
    // Usage is counted per key: a proxy with no key of any kind (none can be created without an admin key) and no
    // usage stream pays nothing for it.
    usage: [
      ...(telemetry ? [telemetry.identities] : []),
      ...(countsUsage({ keys: keys.under(config), usage: { streams: config.keys.usageStream !== undefined } })
        ? [usageSink(usage)]
        : []),
    ],
    endpoints,
    metrics,
  });
  let active = false;
  const services: Services = {
    bodyPool,
    config,
    store,
    health,
    balancer,
    pipeline,
    affinity,
    responses,
    upstream,
    stats,
    logger,
    clock,
    budgets,
    limits,
    metrics,
    cache,
    telemetry,
    objects,
    realtime: previous?.realtime ?? new RealtimeSessions(),
    keys,
    keyLimits,
    usage,
    prober,
    activate: () => {
      if (active) return;
      active = true;
      metrics.known(config);
      keys.configure(config);
      if (keys.hasAdminKeys) keys.start();
      usage.configure(config.keys);
      bodyPool.max = settings.limits.maxInflightBodyBytes;
      upstream.setLimits({ maxResponseBytes, connectTimeoutMs, maxOpenConnections });
      upstream.keepTokensOf(config.groups.flatMap((group) => group.endpoints));
      prober?.start();
    },
    discard: async () => {
      if (active) return;
      await prober?.close();
      if (!kept) upstream.close();
    },
    close: async () => {
      await prober?.close();
      await keys.close();
      await Promise.all([cache.settled(), usage.settled()]);
      upstream.close();
      await store.close();
    },
  };
  if (!previous) services.activate();
  return services;
}

/** Active health probes (`health_probe_interval`), started when the services are activated. */
async function createProber(
  config: Config,
  deps: Pick<ProberOptions, "store" | "health" | "upstream" | "logger" | "now">,
): Promise<HealthProber | undefined> {
  const intervalMs = config.settings.healthProbeIntervalMs ?? 0;
  if (intervalMs <= 0) return undefined;
  // Imported only when probes are configured: a proxy without them does not hold their code.
  const { HealthProber } = await import("./health/prober.ts");
  const prober = new HealthProber({
    ...deps,
    groups: config.groups,
    intervalMs,
  });
  deps.health.useProbes(prober);
  return prober;
}

/** Loaded only when tracing is on: with it off, no OpenTelemetry code is even imported. */
async function createTelemetry(tracing: boolean): Promise<Telemetry | undefined> {
  if (!tracing) return undefined;
  const { Telemetry } = await import("./telemetry/telemetry.ts");
  return new Telemetry();
}
