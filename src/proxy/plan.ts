/**
 * The plan stage's product: the endpoints one request tries, in order. The balancer's `AttemptPlan` is one (a
 * model group, weighted, with waits for capacity); `OwnerPlan` is the other: the single endpoint that owns a stored
 * response. A new routing strategy is a new way to build a `Plan`; the attempts stage only walks it.
 */

import type { AttemptOutcome, Pick } from "../balancer/balancer.ts";
import type { EndpointConfig } from "../config/config.ts";
import { echoed, ProxyError } from "../errors.ts";
import type { EndpointLoad } from "../balancer/load.ts";
import type { HealthTracker } from "../health/tracker.ts";
import { HEALTHY } from "../store/store.ts";
import { type Budgets, hasBudget, type Reservation } from "../ratelimit/budget.ts";

/** A generation request's charge to the owner's rpm/tpm budget: its estimated tokens. */
export interface OwnerCharge {
  readonly budgets: Budgets;
  readonly tokens: number;
}

export interface Plan {
  /** Attempts made so far (the number of picks handed out). */
  readonly attempts: number;
  /** The next endpoint to try, or undefined when the plan ran out (then `exhaustedError`). */
  next(): Promise<Pick | undefined>;
  /**
   * The next pick when it can be made at once (health held in this process, no wait, no budget to charge); else
   * undefined, having changed nothing, and `next()` decides.
   */
  nextNow?(): Pick | undefined;
  /** Records what an attempt got: it shapes the next pick and the final error. */
  failed(endpoint: EndpointConfig, outcome: AttemptOutcome): void;
  /** The error for a request whose plan ran out (with what each attempt got). */
  exhaustedError(): Promise<ProxyError>;
}

/**
 * One attempt at the endpoint that owns response `responseId` (or the file or batch of that id: `what`), whatever
 * its health (nobody else can answer; its cooldown is for choosing among equals). Its failure is a 504 (timeout)
 * or 503. With `charge` (a generation request pinned to the endpoint holding its files) it charges the owner's
 * rpm/tpm budget as a balanced request would, so the budget counts what the endpoint was sent; a spent budget does
 * not hold it back (nobody else can answer it: the upstream's own limit decides).
 */
export class OwnerPlan implements Plan {
  readonly #owner: EndpointConfig;
  readonly #responseId: string;
  readonly #health: HealthTracker;
  readonly #load: EndpointLoad;
  readonly #what: string;
  readonly #charge: OwnerCharge | undefined;
  #attempts = 0;
  #outcome: AttemptOutcome | undefined;

  constructor(
    owner: EndpointConfig,
    responseId: string,
    health: HealthTracker,
    load: EndpointLoad,
    what = "response",
    charge?: OwnerCharge,
  ) {
    this.#what = what;
    this.#charge = charge;
    this.#owner = owner;
    this.#responseId = responseId;
    this.#health = health;
    this.#load = load;
  }

  get attempts(): number {
    return this.#attempts;
  }

  async next(): Promise<Pick | undefined> {
    if (this.#attempts > 0) return undefined;
    this.#attempts++;
    const [[health], reservation] = await Promise.all([
      this.#health.snapshotNow([this.#owner]) ?? this.#health.snapshot([this.#owner]).catch(() => [HEALTHY]),
      this.#reserve(),
    ]);
    const lease = this.#load.start(this.#owner.id);
    return reservation
      ? { endpoint: this.#owner, health, reservation, lease }
      : { endpoint: this.#owner, health, lease };
  }

  #reserve(): Promise<Reservation | undefined> {
    const charge = this.#charge;
    if (!charge || !hasBudget(this.#owner)) return Promise.resolve(undefined);
    return charge.budgets.reserve(this.#owner, charge.tokens);
  }

  failed(_endpoint: EndpointConfig, outcome: AttemptOutcome): void {
    this.#outcome = outcome;
  }

  exhaustedError(): Promise<ProxyError> {
    const outcome = this.#outcome;
    const timeout = outcome?.kind === "timeout";
    const why = outcome === undefined ? "no attempt" : describeOutcome(outcome);
    return Promise.resolve(
      new ProxyError(
        timeout ? 504 : 503,
        timeout ? "timeout" : "service_unavailable",
        timeout ? "upstream_timeout" : "no_healthy_endpoint",
        `The endpoint that owns ${this.#what} '${
          echoed(this.#responseId)
        }' (${this.#owner.id}) could not answer: ${why}`,
      ),
    );
  }
}

/**
 * A plan for a request that cannot always go to another endpoint (a body streamed upstream, an upload that may
 * have been received): it ends after an attempt whose outcome `unresendable` gives a reason for, with an error
 * saying so.
 */
export class ResendPlan implements Plan {
  readonly #inner: Plan;
  readonly #unresendable: (outcome: AttemptOutcome) => string | undefined;
  #last: { endpoint: EndpointConfig; outcome: AttemptOutcome } | undefined;

  constructor(inner: Plan, unresendable: (outcome: AttemptOutcome) => string | undefined) {
    this.#inner = inner;
    this.#unresendable = unresendable;
  }

  get attempts(): number {
    return this.#inner.attempts;
  }

  next(): Promise<Pick | undefined> {
    if (this.#last && this.#unresendable(this.#last.outcome) !== undefined) return Promise.resolve(undefined);
    return this.#inner.next();
  }

  failed(endpoint: EndpointConfig, outcome: AttemptOutcome): void {
    this.#last = { endpoint, outcome };
    this.#inner.failed(endpoint, outcome);
  }

  exhaustedError(): Promise<ProxyError> {
    const last = this.#last;
    const reason = last && this.#unresendable(last.outcome);
    if (!last || reason === undefined) return this.#inner.exhaustedError();
    const { endpoint, outcome } = last;
    const timeout = outcome.kind === "timeout";
    return Promise.resolve(
      new ProxyError(
        timeout ? 504 : 502,
        timeout ? "timeout" : "server_error",
        timeout ? "upstream_timeout" : "upstream_failed",
        `Endpoint ${endpoint.id} failed (${describeOutcome(outcome)}) ${reason}`,
      ),
    );
  }
}

/** An attempt's outcome in a few words, for the error that ends a plan. */
function describeOutcome(outcome: AttemptOutcome): string {
  if (outcome.kind === "status") return `HTTP ${outcome.status}`;
  return outcome.kind === "connection" ? outcome.message : outcome.kind;
}
