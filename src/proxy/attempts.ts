/**
 * The attempts stage: walks a plan, one upstream call per pick, and classifies what came back: an answer for the
 * client (a success, or the caller's own error), or a failure that moves on to the next pick (health and metrics
 * noted). Every upstream call of the proxy goes through here: generation requests and `/responses/{id}` alike.
 * Per-attempt watchers (dashboard histories, tracing spans) hook into the upstream client, which every attempt
 * passes (`upstream/attempt.ts`).
 */

import type { AttemptOutcome, Pick } from "../balancer/balancer.ts";
import type { EndpointConfig } from "../config/config.ts";
import type { AnswerMeta } from "../core/answer.ts";
import { ClientGone } from "../errors.ts";
import type { HealthTracker } from "../health/tracker.ts";
import type { Logger } from "../logger.ts";
import { failoverReason, type ProxyMetrics } from "../metrics/metrics.ts";
import { parseRetryAfter } from "../ratelimit/headers.ts";
import type { UpstreamLimits } from "../ratelimit/upstream_limits.ts";
import type { Budgets } from "../ratelimit/budget.ts";
import type { UpstreamClient } from "../upstream/client.ts";
import type { Plan } from "./plan.ts";
import type { Stats } from "./stats.ts";
import { type Got, type Served, spent, type UpstreamCall } from "./call.ts";
import { answered, failed, type Outcome } from "./answered.ts";
import type { UpstreamFault } from "./first_error.ts";
import { faultError } from "./fault_error.ts";
import { callerError, forwardedHeaders } from "./upstream_answer.ts";
import { contentFilterRefusal, policyError } from "../upstream/content_filter.ts";

export interface AttemptDeps {
  readonly health: HealthTracker;
  readonly upstream: UpstreamClient;
  readonly stats: Stats;
  readonly logger: Logger;
  readonly now: () => number;
  /** The `x-ratelimit-*` headers of every answer. */
  readonly limits: UpstreamLimits;
  /** Where a failed attempt gives back the tokens its pick charged to the endpoint's `tpm`. */
  readonly budgets?: Budgets;
  readonly metrics?: ProxyMetrics;
}

export class Attempts {
  readonly #deps: AttemptDeps;

  constructor(deps: AttemptDeps) {
    this.#deps = deps;
  }

  /** Tries the plan's endpoints in turn until one answers; throws the plan's error when it runs out. */
  async run(call: UpstreamCall, plan: Plan): Promise<Served> {
    let refused: Served | undefined;
    // The last upstream error inside a 200, and how many attempts ended with one.
    let fault: { readonly fault: UpstreamFault; readonly endpoint: EndpointConfig } | undefined;
    let faults = 0;
    while (true) {
      let pick: Pick | undefined;
      try {
        pick = plan.nextNow?.() ?? await plan.next();
      } catch (error) {
        if (call.signal.aborted) throw new ClientGone();
        throw error;
      }
      if (!pick) {
        // Every other endpoint failed or refused too: the refusal is the most telling answer.
        if (refused) return refused;
        // Every endpoint answered with an error of its own: the client gets the upstream's (the last one).
        if (fault && faults === plan.attempts) throw faultError(fault.fault, fault.endpoint);
        throw await plan.exhaustedError();
      }
      if (plan.attempts > 1) this.#deps.metrics?.retry(call.group);
      let outcome: Outcome | undefined;
      try {
        outcome = await this.#attempt(call, pick, plan.attempts);
      } finally {
        // A stream's attempt lasts until the stream ends (its onEnd ends the lease); every other one ends here.
        if (!(outcome?.kind === "answer" && outcome.answer.body.kind === "stream")) pick.lease.end();
      }
      if (outcome.kind === "answer") return { answer: outcome.answer, pick };
      // The attempt failed: the tokens estimated for it were not used.
      if (pick.reservation) this.#deps.budgets?.settleTokens(pick.reservation, 0);
      if (outcome.kind === "refused") {
        refused = { answer: outcome.answer, pick };
        this.#deps.metrics?.failover(pick.endpoint, "content_filter");
        plan.failed(pick.endpoint, { kind: "status", status: outcome.answer.status });
        continue;
      }
      if (outcome.fault) {
        fault = { fault: outcome.fault, endpoint: pick.endpoint };
        faults++;
      }
      this.#deps.metrics?.failover(pick.endpoint, failoverReason(outcome.outcome));
      plan.failed(pick.endpoint, outcome.outcome);
    }
  }

  async #attempt(call: UpstreamCall, pick: Pick, attempt: number): Promise<Outcome> {
    const { endpoint } = pick;
    this.#deps.stats.attempt(endpoint.id);
    const sentAt = performance.now();
    const result = await this.#deps.upstream.send({
      endpoint,
      method: call.method,
      path: call.path,
      query: call.query,
      body: call.body?.(endpoint),
      contentType: call.contentType,
      clientHeaders: call.clientHeaders,
      requestId: call.requestId,
      signal: call.signal,
      once: call.once,
    });
    // One clock reading per step (each is a call into the runtime): the upstream's answer, then its whole body.
    const answeredAt = spent(call.trace, sentAt);
    if (result.kind === "aborted") throw new ClientGone();
    if (result.kind === "timeout") return await this.#failed(endpoint, "timeout", { kind: "timeout" });
    if (result.kind === "connection") {
      const { message, unsent } = result;
      return await this.#failed(endpoint, "connection", { kind: "connection", message, unsent });
    }
    const { response, release } = result;
    const status = response.status;
    this.#deps.metrics?.upstreamLatency(endpoint, (answeredAt - sentAt) / 1000);
    // The upstream's headers are read once, into the record the client's answer is built from.
    const headers = forwardedHeaders(response.headers);
    // Every answer's rate-limit headers: an endpoint with nothing left is skipped until the reset.
    const spentUntil = this.#deps.limits.observe(endpoint.id, headers);
    if (spentUntil !== undefined && status !== 429) {
      await this.#deps.health.rateLimitedUntil(endpoint, spentUntil, "x-ratelimit remaining 0");
    }
    const meta: AnswerMeta = { endpoint: endpoint.id, attempts: attempt, cache: null };
    const got: Got = { call, pick, response, release, headers, meta, sentAt, answeredAt };
    if (status >= 200 && status < 300) {
      const outcome = answered(this.#deps, got);
      return outcome instanceof Promise ? await outcome : outcome;
    }
    if (call.failure(status)) return await this.#failure(got, spentUntil);
    return await this.#callerError(got);
  }

  /**
   * The caller's own error (400, 413, 422, ...; a 404 of a stored response): its body goes back as it is, an Azure
   * content-filter refusal as a policy error (tried elsewhere first with `content_filter_fallback`).
   */
  async #callerError(got: Got): Promise<Outcome> {
    const { call, response, release, headers, meta } = got;
    const status = response.status;
    const bytes = await response.bytes().catch(() => new Uint8Array(0));
    release();
    if (!call.wrapErrors) {
      return { kind: "answer", answer: { status, headers, body: { kind: "bytes", bytes }, meta } };
    }
    const refusal = contentFilterRefusal(status, bytes);
    if (refusal) {
      const answer = policyError(refusal, headers, meta);
      return { kind: call.contentFilterFallback ? "refused" : "answer", answer };
    }
    return { kind: "answer", answer: callerError(status, bytes, headers, meta) };
  }

  /** A status that is the endpoint's failure: its cooldown (a 429's from its Retry-After) and the next pick. */
  async #failure(got: Got, spentUntil: number | undefined): Promise<Outcome> {
    const { response, release, pick, headers } = got;
    const status = response.status;
    if (response.source) response.source.cancel();
    else await response.body?.cancel().catch(() => {});
    release();
    this.#deps.stats.failure(pick.endpoint.id);
    if (status === 429) {
      const now = this.#deps.now();
      const resetMs = spentUntil !== undefined ? spentUntil - now : undefined;
      await this.#deps.health.rateLimited(pick.endpoint, parseRetryAfter(headers, now) ?? resetMs);
    } else await this.#deps.health.failure(pick.endpoint, `HTTP ${status}`);
    return { kind: "retry", outcome: { kind: "status", status } };
  }

  #failed(endpoint: EndpointConfig, cause: string, outcome: AttemptOutcome): Promise<Outcome> {
    return failed(this.#deps, endpoint, cause, outcome);
  }
}
