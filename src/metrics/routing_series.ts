/**
 * The routing series of `/metrics`, set at scrape time from the balancer's view of each endpoint: its tier, the
 * attempts it has in flight on this instance and its average time to first byte.
 */

import type { EndpointRouting } from "../balancer/view.ts";
import { Gauge, type Registry } from "./registry.ts";

export class RoutingSeries {
  readonly #tier: Gauge;
  readonly #inFlight: Gauge;
  readonly #latency: Gauge;

  constructor(registry: Registry) {
    const labels = ["group", "endpoint"];
    this.#tier = registry.register(
      new Gauge(
        "llmproxy_endpoint_tier",
        "The endpoint's priority tier in its group, 1 being preferred",
        labels,
      ),
    );
    this.#inFlight = registry.register(
      new Gauge(
        "llmproxy_endpoint_in_flight",
        "Attempts this instance has in flight on the endpoint",
        labels,
      ),
    );
    this.#latency = registry.register(
      new Gauge(
        "llmproxy_endpoint_ttfb_average_seconds",
        "Exponentially weighted average time to first byte of the endpoint's answers on this instance",
        labels,
      ),
    );
  }

  /** Replaces every series with the endpoints of the current config. */
  update(endpoints: readonly EndpointRouting[]): void {
    this.#tier.reset();
    this.#inFlight.reset();
    this.#latency.reset();
    for (const entry of endpoints) {
      const labels = [entry.group, entry.endpoint];
      this.#tier.set(labels, entry.tier);
      this.#inFlight.set(labels, entry.inFlight);
      if (entry.latencyMs !== undefined) this.#latency.set(labels, entry.latencyMs / 1000);
    }
  }
}
