/**
 * The plan stage's product: the endpoints one request tries, in order. The balancer's `AttemptPlan` is one (a
 * model group, weighted, with waits for capacity); `OwnerPlan` is the other: the single endpoint that owns a stored
 * response. A new routing strategy is a new way to build a `Plan`; the attempts stage only walks it.
 */

import type { AttemptOutcome, Pick } from "../balancer/balancer.ts";
import type { EndpointConfig } from "../config/config.ts";
import { ProxyError } from "../errors.ts";
import type { EndpointLoad } from "../balancer/load.ts";
import type { HealthTracker } from "../health/tracker.ts";
import { HEALTHY } from "../store/store.ts";

export interface Plan {
  /** Attempts made so far (the number of picks handed out). */
  readonly attempts: number;
  /** The next endpoint to try, or undefined when the plan ran out (then `exhaustedError`). */
  next(): Promise<Pick | undefined>;
  /** Records what an attempt got: it shapes the next pick and the final error. */
  failed(endpoint: EndpointConfig, outcome: AttemptOutcome): void;
  /** The error for a request whose plan ran out (with what each attempt got). */
  exhaustedError(): Promise<ProxyError>;
}

/**
 * One attempt at the endpoint that owns response `responseId`, whatever its health (nobody else can answer; its
 * cooldown is for choosing among equals). Its failure is a 504 (timeout) or 503.
 */
export class OwnerPlan implements Plan {
  readonly #owner: EndpointConfig;
  readonly #responseId: string;
  readonly #health: HealthTracker;
  readonly #load: EndpointLoad;
  #attempts = 0;
  #outcome: AttemptOutcome | undefined;

  constructor(owner: EndpointConfig, responseId: string, health: HealthTracker, load: EndpointLoad) {
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
    const [health] = await this.#health.snapshot([this.#owner]).catch(() => [HEALTHY]);
    return { endpoint: this.#owner, health, lease: this.#load.start(this.#owner.id) };
  }

  failed(_endpoint: EndpointConfig, outcome: AttemptOutcome): void {
    this.#outcome = outcome;
  }

  exhaustedError(): Promise<ProxyError> {
    const outcome = this.#outcome;
    const timeout = outcome?.kind === "timeout";
    const why = outcome === undefined
      ? "no attempt"
      : outcome.kind === "status"
      ? `HTTP ${outcome.status}`
      : outcome.kind === "connection"
      ? outcome.message
      : outcome.kind;
    return Promise.resolve(
      new ProxyError(
        timeout ? 504 : 503,
        timeout ? "timeout" : "service_unavailable",
        timeout ? "upstream_timeout" : "no_healthy_endpoint",
        `The endpoint that owns response '${
          this.#responseId.slice(0, 200)
        }' (${this.#owner.id}) could not answer: ${why}`,
      ),
    );
  }
}
