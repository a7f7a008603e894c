/**
 * Active health probes (`general_settings.health_probe_interval`): a `GET` of each endpoint's models list, never a
 * paid call. Each interval, one instance among those sharing the store takes a lock and probes; the others read the
 * results it shares. One that fails its probe (5xx, timeout, no connection) counts a failure as traffic would. An
 * endpoint cooling down after failures serves again at once (every instance sees the result) when a probe answers
 * after the probe before it failed: a probe ends only an outage it saw. One whose models list answers all along
 * while its requests fail is left to cool down for the whole `cooldown_time` (a probe says nothing of what failed).
 * A 4xx says the probe itself is refused (a key without list permission): noted, never held against it.
 *
 * No clocks are compared across instances: a probe that ends a cooldown shares that cooldown's deadline as the
 * store holds it (`storedUntil`, in Redis's clock), and every instance treats exactly that cooldown as over (a
 * later one, with a later deadline, is not).
 */

import type { EndpointConfig, GroupConfig } from "../config/config.ts";
import type { Logger } from "../logger.ts";
import type { EndpointHealth, Store } from "../store/store.ts";
import type { UpstreamClient } from "../upstream/client.ts";
import type { HealthTracker } from "./tracker.ts";
import { startTimer, type Timer } from "../util/timer.ts";

export const PROBE_LOCK_KEY = "probe:lock";
export const PROBE_RESULTS_KEY = "probe:results";

/** What the probes found of an endpoint, as every instance sees it. */
export interface ProbeResult {
  /** The last probe failed: the next one that answers ends the endpoint's cooldown. */
  readonly failing: boolean;
  /** The deadline (`storedUntil`: as stored) of the cooldown a probe ended. */
  readonly ended?: number;
}

export type ProbeResults = Readonly<Record<string, ProbeResult>>;

export interface ProberOptions {
  readonly groups: readonly GroupConfig[];
  readonly store: Store;
  readonly health: HealthTracker;
  readonly upstream: UpstreamClient;
  readonly logger: Logger;
  readonly now: () => number;
  readonly intervalMs: number;
}

export class HealthProber {
  readonly #options: ProberOptions;
  readonly #instance = crypto.randomUUID();
  #results: ProbeResults = {};
  /** The cooldown each endpoint was last said to keep although it answered (logged once per cooldown). */
  readonly #kept = new Map<string, number>();
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
   * Whether `state` (a cooldown after failures) is the one a probe ended. Rate-limit cooldowns are left alone: a
   * models list says nothing of those.
   */
  revives(id: string, state: EndpointHealth): boolean {
    if (state.reason !== "failures" || state.cooldownUntil === 0) return false;
    return this.#results[id]?.ended === stored(state);
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
      if (shared) this.#results = parseResults(shared);
      return;
    }
    const endpoints = this.#options.groups.flatMap((group) => group.endpoints);
    // As stored: a cooldown a probe already ended is still the one a new probe may end again (or not).
    const before = await store.readHealth(endpoints.map((endpoint) => endpoint.id));
    const results: Record<string, ProbeResult> = { ...this.#results };
    await Promise.all(endpoints.map(async (endpoint, i) => {
      const result = await this.#probe(endpoint, before[i], results[endpoint.id]);
      if (result) results[endpoint.id] = result;
    }));
    this.#results = results;
    await store.set(PROBE_RESULTS_KEY, JSON.stringify(results), intervalMs * 3);
  }

  /** Probes one endpoint; what it found, or undefined when the probe was refused (it says nothing). */
  async #probe(
    endpoint: EndpointConfig,
    before: EndpointHealth,
    last: ProbeResult | undefined,
  ): Promise<ProbeResult | undefined> {
    const { upstream, health, logger, intervalMs } = this.#options;
    // What an earlier probe ended stays ended.
    const ended = last?.ended !== undefined ? { ended: last.ended } : {};
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
        // Failures counted by traffic while the probes answered are not forgiven by a models list either: only
        // a probe that answers after one failed (it saw them) clears the count.
        if (last?.failing) await health.success(endpoint, before);
        const cooling = before.reason === "failures" && before.cooldownUntil > 0 &&
          stored(before) !== last?.ended;
        if (cooling && last?.failing) {
          logger.info("endpoint answered its health probe; back in service", { endpoint: endpoint.id });
          return { failing: false, ended: stored(before) };
        }
        // Said once per cooldown (and not of one already over).
        const kept = cooling && before.cooldownUntil > this.#options.now();
        if (kept && this.#kept.get(endpoint.id) !== stored(before)) {
          this.#kept.set(endpoint.id, stored(before));
          const message = "endpoint answers its health probe but its requests failed: it cools down in full";
          logger.info(message, { endpoint: endpoint.id });
        }
        return { failing: false, ...ended };
      }
      if (status < 500) {
        if (status !== 429) logger.debug("health probe refused", { endpoint: endpoint.id, status });
        return undefined;
      }
      await health.failure(endpoint, `health probe: HTTP ${status}`);
      return { failing: true, ...ended };
    }
    const why = result.kind === "connection" ? result.message : "timeout";
    await health.failure(endpoint, `health probe: ${why}`);
    return { failing: true, ...ended };
  }
}

/** A cooldown's deadline as the store holds it: the same on every instance and every read of that cooldown. */
const stored = (state: EndpointHealth): number => state.storedUntil ?? state.cooldownUntil;

/** The shared results; anything else (an older version's epoch times) reads as nothing found. */
function parseResults(text: string): ProbeResults {
  try {
    const parsed = JSON.parse(text);
    if (!parsed || typeof parsed !== "object") return {};
    return Object.fromEntries(
      Object.entries(parsed).filter(([, result]) =>
        typeof result === "object" && result !== null && typeof (result as ProbeResult).failing === "boolean"
      ),
    ) as ProbeResults;
  } catch {
    return {};
  }
}
