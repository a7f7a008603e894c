/**
 * Endpoint health over the shared store: consecutive failures, cooldowns after `allowed_fails`, and immediate
 * cooldowns on 429s until the upstream's retry time. The transitions themselves live in the store (atomic there).
 */

import type { EndpointConfig } from "../config/config.ts";
import type { Logger } from "../logger.ts";
import type { ProxyMetrics } from "../metrics/metrics.ts";
import { type EndpointHealth, HEALTHY, type Store } from "../store/store.ts";
import { isoTime } from "../util/iso_time.ts";

export interface HealthSettings {
  readonly allowedFails: number;
  readonly cooldownMs: number;
}

export class HealthTracker {
  readonly #store: Store;
  readonly #settings: HealthSettings;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #metrics: ProxyMetrics | undefined;
  #probes: { revives(id: string, state: EndpointHealth): boolean } | undefined;

  constructor(
    store: Store,
    settings: HealthSettings,
    now: () => number,
    logger: Logger,
    metrics?: ProxyMetrics,
  ) {
    this.#store = store;
    this.#settings = settings;
    this.#now = now;
    this.#logger = logger;
    this.#metrics = metrics;
  }

  /** Lets active health probes end cooldowns after failures (`health_probe_interval`). */
  useProbes(probes: { revives(id: string, state: EndpointHealth): boolean }): void {
    this.#probes = probes;
  }

  /** Never throws: a store that answers with an error (not merely away) reads as "all healthy", with a warning. */
  async snapshot(endpoints: readonly EndpointConfig[]): Promise<EndpointHealth[]> {
    try {
      const states = await this.#store.readHealth(endpoints.map((endpoint) => endpoint.id));
      const probes = this.#probes;
      if (!probes) return states;
      // An endpoint that answered a health probe since its cooldown after failures began is back in service.
      return states.map((state, i) => probes.revives(endpoints[i].id, state) ? HEALTHY : state);
    } catch (error) {
      this.#logger.warn("could not read endpoint health; treating endpoints as healthy", { error });
      return endpoints.map(() => HEALTHY);
    }
  }

  /**
   * The snapshot at once when the store holds health in this process (the in-memory store, or the copy a shared
   * store keeps of it); else undefined.
   */
  snapshotNow(endpoints: readonly EndpointConfig[]): EndpointHealth[] | undefined {
    const states = this.#store.readHealthNow?.(endpoints.map((endpoint) => endpoint.id));
    if (states === undefined) return undefined;
    const probes = this.#probes;
    return probes
      ? states.map((state, i) => probes.revives(endpoints[i].id, state) ? HEALTHY : state)
      : states;
  }

  /** A read of the store to start ahead of the plan, unless `snapshotNow` can answer (then undefined). */
  prefetch(endpoints: readonly EndpointConfig[]): Promise<EndpointHealth[]> | undefined {
    return this.snapshotNow(endpoints) ? undefined : this.snapshot(endpoints);
  }

  /** Counts a failed attempt; cools the endpoint down once it reaches `allowed_fails`. */
  async failure(endpoint: EndpointConfig, cause: string): Promise<EndpointHealth> {
    const state = await this.#guard(endpoint, () =>
      this.#store.recordFailure(endpoint.id, {
        allowedFails: this.#settings.allowedFails,
        cooldownMs: this.#settings.cooldownMs,
      }));
    if (state.cooldownUntil > this.#now() && state.failures === 0) {
      this.#metrics?.cooldown(endpoint, "failures");
      this.#logger.warn("endpoint cooling down", {
        endpoint: endpoint.id,
        group: endpoint.group,
        cause,
        until: isoTime(state.cooldownUntil),
      });
    }
    return state;
  }

  /** A 429: cool down at once until the upstream's retry time, else `cooldown_time`. */
  rateLimited(endpoint: EndpointConfig, retryAfterMs: number | undefined): Promise<EndpointHealth> {
    return this.#rateLimitedFor(endpoint, retryAfterMs ?? this.#settings.cooldownMs, "HTTP 429");
  }

  /**
   * Cools the endpoint down for its rate limit until the epoch ms `until` of this instance's clock (the reset of
   * a limit its headers report as spent). Extends a shorter cooldown, never shortens a longer one.
   */
  rateLimitedUntil(endpoint: EndpointConfig, until: number, cause: string): Promise<EndpointHealth> {
    return this.#rateLimitedFor(endpoint, until - this.#now(), cause);
  }

  /** The store gets the time left, not a deadline: it measures the cooldown by its own clock. */
  async #rateLimitedFor(endpoint: EndpointConfig, forMs: number, cause: string): Promise<EndpointHealth> {
    const state = await this.#guard(endpoint, () => this.#store.coolDown(endpoint.id, forMs, "rate_limit"));
    this.#metrics?.cooldown(endpoint, "rate_limit");
    this.#logger.info("endpoint rate limited", {
      endpoint: endpoint.id,
      group: endpoint.group,
      cause,
      until: isoTime(state.cooldownUntil),
    });
    return state;
  }

  /**
   * Resets the failure count. Skipped when the snapshot already showed none (no store write on the hot path): then
   * undefined, not a promise, so a request's answer waits for nothing here.
   */
  success(endpoint: EndpointConfig, before: EndpointHealth | undefined): Promise<void> | undefined {
    if (before && before.failures === 0) return undefined;
    return this.#guard(endpoint, () => this.#store.recordSuccess(endpoint.id).then(() => HEALTHY)).then(
      () => {},
    );
  }

  /** A state write the store refused (it answered with an error) is logged; the request carries on. */
  async #guard(endpoint: EndpointConfig, write: () => Promise<EndpointHealth>): Promise<EndpointHealth> {
    try {
      return await write();
    } catch (error) {
      this.#logger.warn("could not record endpoint health", { endpoint: endpoint.id, error });
      return HEALTHY;
    }
  }
}
