/**
 * The endpoints one request tries: the best tier that can serve (weight-0 fallbacks last), each chosen by `routing`
 * and tried at most once, a bounded wait when all cool down; each attempt's outcome kept for the final error.
 */

import type { EndpointConfig, GroupConfig } from "../config/config.ts";
import type { AbortLike } from "../core/abort_like.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import type { ProxyError } from "../errors.ts";
import type { HealthTracker } from "../health/tracker.ts";
import { type Budgets, hasBudget, type Reservation, withBudget } from "../ratelimit/budget.ts";
import { type EndpointHealth, HEALTHY } from "../store/store.ts";
import { type AttemptOutcome, exhaustedError } from "./exhausted.ts";
import { EndpointLoad, type Lease } from "./load.ts";
import { type ChoiceContext, chooseInTier } from "./strategy.ts";
import { bestTier } from "./tiers.ts";
import { SmoothWeighted } from "./weighted.ts";

export type { AttemptOutcome };

export interface Pick {
  readonly endpoint: EndpointConfig;
  /** The endpoint's health when it was picked. */
  readonly health: EndpointHealth;
  /** What was charged to the endpoint's rpm/tpm budget; absent for endpoints without one. */
  readonly reservation?: Reservation;
  /** The attempt's place in the endpoint's in-flight count: report its first byte, end it when it is over. */
  readonly lease: Lease;
}

/** How the balancer measures endpoints and draws its probes. */
export interface RoutingOptions {
  /** In-flight counts and latency averages; kept across config reloads. */
  readonly load?: EndpointLoad;
  /** [0, 1); default `Math.random`. */
  readonly random?: () => number;
}

export interface PlanOptions {
  /** First attempt plus `num_retries`. */
  readonly maxAttempts: number;
  /** How long this request may wait in total for an endpoint to come back. */
  readonly maxWaitMs: number;
  readonly signal?: AbortLike;
  /** Estimated tokens of the request, charged to `tpm` budgets. */
  readonly tokens?: number;
  /** Only this endpoint may be tried (Responses affinity: the endpoint that owns a conversation). */
  readonly pinned?: string;
  /** Endpoints never to try in this request. */
  readonly exclude?: readonly string[];
  /** Told each wait for capacity before it starts (metrics, the request's timing). */
  readonly onWait?: (ms: number) => void;
  /**
   * The group's endpoint health, already being read (on a shared store the cache layer reads it alongside the
   * entry, in the same Redis round trip): the first choice uses it instead of reading it again.
   */
  readonly health?: Promise<EndpointHealth[]>;
}

/** An endpoint open to a request, with its health as seen. */
type Candidate = { readonly endpoint: EndpointConfig; readonly health: EndpointHealth };

export class Balancer {
  readonly #rotations = new Map<string, SmoothWeighted>();
  /** Per group config (a reload makes new ones): how its endpoints are chosen, made once, not per request. */
  readonly #choices = new WeakMap<GroupConfig, ChoiceContext>();
  readonly #health: HealthTracker;
  readonly #clock: Clock;
  readonly #budgets: Budgets | undefined;
  readonly load: EndpointLoad;
  readonly #random: () => number;

  constructor(
    health: HealthTracker,
    clock: Clock = systemClock,
    budgets?: Budgets,
    routing: RoutingOptions = {},
  ) {
    this.#health = health;
    this.#clock = clock;
    this.#budgets = budgets;
    this.load = routing.load ?? new EndpointLoad();
    this.#random = routing.random ?? Math.random;
  }

  plan(group: GroupConfig, options: PlanOptions): AttemptPlan {
    let choice = this.#choices.get(group);
    if (!choice) {
      let rotation = this.#rotations.get(group.name);
      if (!rotation) this.#rotations.set(group.name, rotation = new SmoothWeighted());
      choice = { strategy: group.routing ?? "weighted", rotation, load: this.load, random: this.#random };
      this.#choices.set(group, choice);
    }
    return new AttemptPlan(group, choice, this.#health, this.#clock, options, this.#budgets);
  }
}

export class AttemptPlan {
  readonly #group: GroupConfig;
  readonly #choice: ChoiceContext;
  readonly #health: HealthTracker;
  readonly #clock: Clock;
  readonly #options: PlanOptions;
  readonly #budgets: Budgets | undefined;
  /** Made at the first pick (most requests make one), as is `#retryable`. */
  #tried: Set<string> | undefined;
  /** Tried endpoints that answered 429: they may be tried again once their cooldown ends within the wait bound. */
  #retryable: Set<string> | undefined;
  #attempts = 0;
  readonly #outcomes: { id: string; outcome: AttemptOutcome }[] = [];
  #waitedMs = 0;
  #prefetched: Promise<EndpointHealth[]> | undefined;

  constructor(
    group: GroupConfig,
    choice: ChoiceContext,
    health: HealthTracker,
    clock: Clock,
    options: PlanOptions,
    budgets?: Budgets,
  ) {
    this.#group = group;
    this.#choice = choice;
    this.#health = health;
    this.#clock = clock;
    this.#options = options;
    this.#budgets = budgets;
    this.#prefetched = options.health;
  }

  get attempts(): number {
    return this.#attempts;
  }

  /** Records what an attempt got, for the final error. */
  failed(endpoint: EndpointConfig, outcome: AttemptOutcome): void {
    this.#outcomes.push({ id: endpoint.id, outcome });
    if (outcome.kind === "status" && outcome.status === 429) (this.#retryable ??= new Set()).add(endpoint.id);
  }

  /**
   * The pick at once when the store holds health in this process and an endpoint is open with no budget to charge
   * (the usual first pick: no promise on the request's way); else undefined, nothing changed, and `next()` decides.
   */
  nextNow(): Pick | undefined {
    const snapshot = this.#attempts < this.#options.maxAttempts && !this.#prefetched
      ? this.#health.snapshotNow(this.#group.endpoints)
      : undefined;
    const tier = snapshot ? bestTier(this.#scan(snapshot, this.#clock.now()).open, this.#allFallbacks) : [];
    // Choosing moves the rotation: only when the choice stands (a budget to charge is `next()`'s, async).
    if (tier.length === 0 || (this.#budgets && tier.some(({ endpoint }) => hasBudget(endpoint)))) return;
    const chosen = chooseInTier(tier, this.#choice);
    return this.#picked(chosen, this.#choice.load.start(chosen.endpoint.id), undefined);
  }

  /** The next endpoint to try, or undefined when the plan is exhausted (then call `exhaustedError`). */
  async next(): Promise<Pick | undefined> {
    if (this.#attempts >= this.#options.maxAttempts) return undefined;
    const endpoints = this.#group.endpoints;
    while (true) {
      const snapshot = await (this.#takePrefetched() ?? this.#health.snapshotNow(endpoints) ??
        this.#health.snapshot(endpoints));
      const now = this.#clock.now();
      const { open, untried, earliest } = this.#scan(snapshot, now);
      const tier = bestTier(open, this.#allFallbacks);
      if (tier.length > 0) {
        const chosen = chooseInTier(tier, this.#choice);
        // Counted in flight from the choice on, so requests choosing at the same moment see each other.
        const lease = this.#choice.load.start(chosen.endpoint.id);
        let reservation: Reservation | undefined;
        if (this.#budgets && hasBudget(chosen.endpoint)) {
          reservation = await this.#budgets.reserve(chosen.endpoint, this.#options.tokens ?? 0);
          // Out of budget: it is blocked until its window ends, so choosing again skips it.
          if (!reservation) {
            lease.end();
            continue;
          }
        }
        return this.#picked(chosen, lease, reservation);
      }
      if (untried === 0) return undefined;
      const waitMs = Math.max(1, earliest - now);
      if (this.#waitedMs + waitMs > this.#options.maxWaitMs) return undefined;
      this.#waitedMs += waitMs;
      this.#options.onWait?.(waitMs);
      await this.#clock.sleep(waitMs, this.#options.signal);
    }
  }

  /** The endpoints still open to this request, those of them that can serve now, and when the first cooling is back. */
  #scan(snapshot: readonly EndpointHealth[], now: number) {
    const endpoints = this.#group.endpoints;
    const open: Candidate[] = [];
    let untried = 0;
    let earliest = Infinity;
    for (let i = 0; i < endpoints.length; i++) {
      const endpoint = endpoints[i];
      if (this.#tried?.has(endpoint.id) && !this.#retryable?.has(endpoint.id)) continue;
      if (this.#excluded(endpoint.id)) continue;
      // Out of its rpm/tpm budget counts as rate limited until the window ends.
      const health = withBudget(snapshot[i], this.#budgets?.blockedUntil(endpoint, now) ?? 0);
      untried++;
      if (health.cooldownUntil <= now) open.push({ endpoint, health });
      else earliest = Math.min(earliest, health.cooldownUntil);
    }
    return { open, untried, earliest };
  }

  #picked(chosen: Candidate, lease: Lease, reservation: Reservation | undefined): Pick {
    (this.#tried ??= new Set()).add(chosen.endpoint.id);
    this.#retryable?.delete(chosen.endpoint.id);
    this.#attempts++;
    const { endpoint, health } = chosen;
    return reservation ? { endpoint, health, lease, reservation } : { endpoint, health, lease };
  }

  /** The health read ahead for this request, once: later choices read it afresh. */
  #takePrefetched(): Promise<EndpointHealth[]> | undefined {
    const prefetched = this.#prefetched;
    this.#prefetched = undefined;
    return prefetched;
  }

  /** A group made only of weight-0 endpoints: they all serve, as equals. */
  get #allFallbacks(): boolean {
    return this.#group.endpoints.every((endpoint) => endpoint.weight === 0);
  }

  #excluded(id: string): boolean {
    const { pinned, exclude } = this.#options;
    return (pinned !== undefined && id !== pinned) || (exclude !== undefined && exclude.includes(id));
  }

  /** The error for a request whose plan ran out: 504, 429 or 503, with what each attempt got. */
  async exhaustedError(): Promise<ProxyError> {
    // A fresh look at every endpoint the request could use: the last attempt may have just cooled one down.
    const endpoints = this.#group.endpoints.filter((endpoint) => !this.#excluded(endpoint.id));
    const states = await this.#health.snapshot(endpoints).catch(() => endpoints.map(() => HEALTHY));
    const now = this.#clock.now();
    const health = endpoints.map((endpoint, i) =>
      withBudget(states[i], this.#budgets?.blockedUntil(endpoint, now) ?? 0)
    );
    return exhaustedError({
      group: this.#group.name,
      endpoints,
      health,
      now,
      outcomes: this.#outcomes,
      tried: this.#tried,
    });
  }
}
