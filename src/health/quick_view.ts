/**
 * Endpoint health for `/health`, which must answer within 100 ms whatever Redis does: the store gets
 * `budgetMs` (default 40 ms) to answer, and past that each endpoint shows the last state read for it (healthy
 * before any). The read that was cut short still lands and refreshes the view for the next probe. One read is in
 * flight at a time: probes that come while it runs share it, so a flood of `/health` (an open route) costs the
 * store one read of every endpoint per store round trip, not one per probe.
 */

import type { EndpointConfig } from "../config/config.ts";
import { type EndpointHealth, HEALTHY } from "../store/store.ts";
import type { HealthTracker } from "./tracker.ts";
import { startTimer, type Timer } from "../util/timer.ts";

export class QuickHealthView {
  readonly #tracker: HealthTracker;
  readonly #groups: readonly (readonly EndpointConfig[])[];
  readonly #budgetMs: number;
  readonly #last = new Map<string, EndpointHealth>();
  #reading: Promise<EndpointHealth[][]> | undefined;

  /** The view of `groups` (each group's endpoints, in order). */
  constructor(tracker: HealthTracker, groups: readonly (readonly EndpointConfig[])[], budgetMs = 40) {
    this.#tracker = tracker;
    this.#groups = groups;
    this.#budgetMs = budgetMs;
  }

  /** The health of every group's endpoints, in order, within the budget. */
  async read(): Promise<EndpointHealth[][]> {
    const reading = this.#reading ??= this.#readAll().finally(() => this.#reading = undefined);
    let timer: Timer | undefined;
    const late = new Promise<null>((resolve) => timer = startTimer(this.#budgetMs, () => resolve(null)));
    const answered = await Promise.race([reading, late]).finally(() => timer?.cancel());
    if (answered !== null) return answered;
    return this.#groups.map((endpoints) =>
      endpoints.map((endpoint) => this.#last.get(endpoint.id) ?? HEALTHY)
    );
  }

  #readAll(): Promise<EndpointHealth[][]> {
    return Promise.all(this.#groups.map((endpoints) =>
      this.#tracker.snapshot(endpoints).then((states) => {
        endpoints.forEach((endpoint, i) => this.#last.set(endpoint.id, states[i]));
        return states;
      })
    ));
  }
}
