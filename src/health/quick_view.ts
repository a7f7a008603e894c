/**
 * Endpoint health for `/health`, which must answer within 100 ms whatever Redis does: the store gets
 * `budgetMs` (default 40 ms) to answer, and past that each endpoint shows the last state read for it (healthy
 * before any). The read that was cut short still lands and refreshes the view for the next probe.
 */

import type { EndpointConfig } from "../config/config.ts";
import { type EndpointHealth, HEALTHY } from "../store/store.ts";
import type { HealthTracker } from "./tracker.ts";
import { startTimer, type Timer } from "../util/timer.ts";

export class QuickHealthView {
  readonly #tracker: HealthTracker;
  readonly #budgetMs: number;
  readonly #last = new Map<string, EndpointHealth>();

  constructor(tracker: HealthTracker, budgetMs = 40) {
    this.#tracker = tracker;
    this.#budgetMs = budgetMs;
  }

  /** The health of every group's endpoints, in order, within the budget. */
  async read(groups: readonly (readonly EndpointConfig[])[]): Promise<EndpointHealth[][]> {
    const reads = groups.map((endpoints) =>
      this.#tracker.snapshot(endpoints).then((states) => {
        endpoints.forEach((endpoint, i) => this.#last.set(endpoint.id, states[i]));
        return states;
      })
    );
    let timer: Timer | undefined;
    const late = new Promise<null>((resolve) => timer = startTimer(this.#budgetMs, () => resolve(null)));
    const answered = await Promise.race([Promise.all(reads), late]).finally(() => timer?.cancel());
    if (answered !== null) return answered;
    return groups.map((endpoints) => endpoints.map((endpoint) => this.#last.get(endpoint.id) ?? HEALTHY));
  }
}
