/**
 * What this instance sees of each endpoint's load: requests in flight (for `least_busy`) and an exponentially
 * weighted average of the time to first byte (for `latency`). Local and cheap: a map lookup and a few additions
 * per attempt; never shared through the store.
 */

/** Weight of the newest sample in the average: about the last eight answers count. */
export const EWMA_ALPHA = 0.25;

export interface LoadView {
  /** Attempts started and not yet ended. */
  readonly inFlight: number;
  /** Average time to first byte in ms; undefined before the first answer. */
  readonly latencyMs: number | undefined;
}

interface Entry {
  inFlight: number;
  latencyMs: number | undefined;
}

/** One attempt's hold on an endpoint: report its first byte, end it once (later calls do nothing). */
export class Lease {
  readonly #entry: Entry;
  #ended = false;

  constructor(entry: Entry) {
    this.#entry = entry;
    entry.inFlight++;
  }

  /** The attempt's time to first byte: folded into the endpoint's average. */
  firstByte(ms: number): void {
    const entry = this.#entry;
    entry.latencyMs = entry.latencyMs === undefined
      ? ms
      : entry.latencyMs + EWMA_ALPHA * (ms - entry.latencyMs);
  }

  /** The attempt is over (answer read, stream ended, or failed). */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#entry.inFlight--;
  }
}

export class EndpointLoad {
  readonly #entries = new Map<string, Entry>();

  #entry(id: string): Entry {
    let entry = this.#entries.get(id);
    if (!entry) this.#entries.set(id, entry = { inFlight: 0, latencyMs: undefined });
    return entry;
  }

  /** Starts an attempt on the endpoint: counted in flight until the lease ends. */
  start(id: string): Lease {
    return new Lease(this.#entry(id));
  }

  inFlight(id: string): number {
    return this.#entries.get(id)?.inFlight ?? 0;
  }

  /** Average time to first byte in ms; undefined before any answer. */
  latencyMs(id: string): number | undefined {
    return this.#entries.get(id)?.latencyMs;
  }

  view(id: string): LoadView {
    const entry = this.#entries.get(id);
    return { inFlight: entry?.inFlight ?? 0, latencyMs: entry?.latencyMs };
  }
}
