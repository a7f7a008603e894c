/**
 * Per-endpoint traffic figures of this instance (requests, successes, failures, latency). Shared health lives in
 * the store; these counters are local, cheap, and reset on restart.
 */

export interface EndpointCounters {
  requests: number;
  successes: number;
  failures: number;
  latencyTotalMs: number;
  latencyCount: number;
}

export class Stats {
  readonly #endpoints = new Map<string, EndpointCounters>();
  readonly startedAt = Date.now();

  #counters(id: string): EndpointCounters {
    let counters = this.#endpoints.get(id);
    if (!counters) {
      counters = { requests: 0, successes: 0, failures: 0, latencyTotalMs: 0, latencyCount: 0 };
      this.#endpoints.set(id, counters);
    }
    return counters;
  }

  attempt(id: string): void {
    this.#counters(id).requests++;
  }

  success(id: string, latencyMs: number): void {
    const counters = this.#counters(id);
    counters.successes++;
    counters.latencyTotalMs += latencyMs;
    counters.latencyCount++;
  }

  failure(id: string): void {
    this.#counters(id).failures++;
  }

  endpoint(id: string): Readonly<EndpointCounters> {
    return this.#counters(id);
  }
}
