/**
 * Active health probes (`general_settings.health_probe_interval`): a `GET` of each endpoint's models list, never a
 * paid call. Each interval, one instance among those sharing the store takes a lock and probes; the others read the
 * results it shares. An endpoint cooling down after failures that answers its probe serves again at once (every
 * instance sees the result); one that fails its probe (5xx, timeout, no connection) counts a failure as traffic
 * would. A 4xx says the probe itself is refused (a key without list permission): noted, never held against it.
 */

import type { EndpointConfig, GroupConfig } from "../config/config.ts";
import type { Logger } from "../logger.ts";
import type { EndpointHealth, Store } from "../store/store.ts";
import type { UpstreamClient } from "../upstream/client.ts";
import type { HealthTracker } from "./tracker.ts";
import { startTimer, type Timer } from "../util/timer.ts";

export const PROBE_LOCK_KEY = "probe:lock";
export const PROBE_RESULTS_KEY = "probe:results";

/** Epoch ms of each endpoint's last successful probe, as every instance sees it. */
export type ProbeResults = Readonly<Record<string, number>>;

export interface ProberOptions {
  readonly groups: readonly GroupConfig[];
  readonly store: Store;
  readonly health: HealthTracker;
  readonly upstream: UpstreamClient;
  readonly logger: Logger;
  readonly now: () => number;
  readonly intervalMs: number;
  /** Passed to the health tracker, which revives endpoints from the shared results. */
  readonly cooldownMs: number;
}

export class HealthProber {
  readonly #options: ProberOptions;
  readonly #instance = crypto.randomUUID();
  #answered: ProbeResults = {};
  #timer: Timer | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(options: ProberOptions) {
    this.#options = options;
  }

  /** Probes every `intervalMs` from now on (the timer never keeps the process alive). */
  start(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = startTimer(this.#options.intervalMs, () => void this.tick(), { repeat: true, ref: false });
    void this.tick();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    await this.#running;
  }

  /**
   * Whether `state` (a cooldown after failures) is over because the endpoint answered a probe after the cooldown
   * began (`cooldownUntil - cooldown_time`). Rate-limit cooldowns are left alone: a models list says nothing of
   * those.
   */
  revives(id: string, state: EndpointHealth): boolean {
    if (state.reason !== "failures" || state.cooldownUntil === 0) return false;
    const answeredAt = this.#answered[id];
    return answeredAt !== undefined && answeredAt > state.cooldownUntil - this.#options.cooldownMs;
  }

  /** One round: probe if this instance holds the lock, else read what the holder shared. Never throws. */
  tick(): Promise<void> {
    if (this.#running || this.#closed) return this.#running ?? Promise.resolve();
    this.#running = this.#round().catch((error) => {
      this.#options.logger.warn("health probe round failed", {
        error: error instanceof Error ? error.message : error,
      });
    }).finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #round(): Promise<void> {
    const { store, intervalMs } = this.#options;
    const mine = await store.setIfAbsent(PROBE_LOCK_KEY, this.#instance, intervalMs);
    if (!mine) {
      const shared = await store.get(PROBE_RESULTS_KEY);
      if (shared) this.#answered = parseResults(shared);
      return;
    }
    const endpoints = this.#options.groups.flatMap((group) => group.endpoints);
    const before = await this.#options.health.snapshot(endpoints);
    const answered: Record<string, number> = { ...this.#answered };
    await Promise.all(endpoints.map(async (endpoint, i) => {
      const at = await this.#probe(endpoint, before[i]);
      if (at !== undefined) answered[endpoint.id] = at;
    }));
    this.#answered = answered;
    await store.set(PROBE_RESULTS_KEY, JSON.stringify(answered), intervalMs * 3);
  }

  /** Probes one endpoint; the time it answered, or undefined when it did not. */
  async #probe(endpoint: EndpointConfig, before: EndpointHealth): Promise<number | undefined> {
    const { upstream, health, logger, now, intervalMs } = this.#options;
    const result = await upstream.send({
      endpoint,
      method: "GET",
      path: "models",
      clientHeaders: new Headers(),
      requestId: `probe-${crypto.randomUUID()}`,
      signal: AbortSignal.timeout(Math.min(10_000, Math.max(100, intervalMs * 0.8))),
    });
    if (result.kind === "response") {
      await result.response.body?.cancel().catch(() => {});
      result.release();
      const status = result.response.status;
      if (status >= 200 && status < 300) {
        const answeredAt = now();
        if (before.cooldownUntil > answeredAt && before.reason === "failures") {
          logger.info("endpoint answered its health probe; back in service", { endpoint: endpoint.id });
        }
        await health.success(endpoint, before);
        return answeredAt;
      }
      if (status < 500) {
        if (status !== 429) logger.debug("health probe refused", { endpoint: endpoint.id, status });
        return undefined;
      }
      await health.failure(endpoint, `health probe: HTTP ${status}`);
      return undefined;
    }
    const why = result.kind === "connection" ? result.message : "timeout";
    await health.failure(endpoint, `health probe: ${why}`);
    return undefined;
  }
}

function parseResults(text: string): ProbeResults {
  try {
    const parsed = JSON.parse(text);
    if (!parsed || typeof parsed !== "object") return {};
    return Object.fromEntries(
      Object.entries(parsed).filter(([, at]) => typeof at === "number"),
    ) as ProbeResults;
  } catch {
    return {};
  }
}
