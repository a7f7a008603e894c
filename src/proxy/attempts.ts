/**
 * The attempts stage: walks a plan, one upstream call per pick, and classifies what came back: an answer for the
 * client (a success, or the caller's own error), or a failure that moves on to the next pick (health and metrics
 * noted). Every upstream call of the proxy goes through here: generation requests and `/responses/{id}` alike.
 * A success's body is read, and a failure noted, in attempt_end.ts. Per-attempt watchers (dashboard histories,
 * tracing spans) hook into the upstream client, which every attempt passes (`upstream/attempt.ts`).
 */

import type { Pick } from "../balancer/balancer.ts";
import type { AnswerMeta } from "../core/answer.ts";
import { ClientGone } from "../errors.ts";
import type { HealthTracker } from "../health/tracker.ts";
import type { Logger } from "../logger.ts";
import { failoverReason, type ProxyMetrics } from "../metrics/metrics.ts";
import { parseRetryAfter } from "../ratelimit/headers.ts";
import type { UpstreamLimits } from "../ratelimit/upstream_limits.ts";
import type { UpstreamClient, UpstreamResult } from "../upstream/client.ts";
import type { Plan } from "./plan.ts";
import type { Stats } from "./stats.ts";
import { type Got, type Outcome, type Served, spent, type UpstreamCall } from "./call.ts";
import { AttemptEnd } from "./attempt_end.ts";
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
  readonly metrics?: ProxyMetrics;
}

export class Attempts {
  readonly #deps: AttemptDeps;
  readonly #end: AttemptEnd;

  constructor(deps: AttemptDeps) {
    this.#deps = deps;
    this.#end = new AttemptEnd(deps);
  }

  /**
   * Tries the plan's endpoints in turn until one answers; throws the plan's error when it runs out. Not async, nor
   * are the attempts: a request waiting for its upstream holds promise callbacks, not suspended frames (issue 22.4c).
   */
  run(call: UpstreamCall, plan: Plan): Promise<Served> {
    return this.#next(call, plan, undefined);
  }

  /** The next pick's attempt; `refused`: a content-filter refusal, the answer if no other endpoint serves. */
  #next(call: UpstreamCall, plan: Plan, refused: Served | undefined): Promise<Served> {
    let pick: Pick | undefined;
    try {
      pick = plan.nextNow?.();
    } catch (error) {
      return Promise.reject(call.signal.aborted ? new ClientGone() : error);
    }
    return pick ? this.#try(call, plan, pick, refused) : this.#pickLater(call, plan, refused);
  }

  /** The next pick when the plan must wait for it (a store read, capacity, a budget), or the plan's end. */
  #pickLater(call: UpstreamCall, plan: Plan, refused: Served | undefined): Promise<Served> {
    return plan.next().then((pick) => {
      if (pick) return this.#try(call, plan, pick, refused);
      // Every other endpoint failed or refused too: the refusal is the most telling answer.
      if (refused) return refused;
      return plan.exhaustedError().then((error) => Promise.reject(error));
    }, (error) => {
      throw call.signal.aborted ? new ClientGone() : error;
    });
  }

  /** One attempt at `pick`: its answer, or the next pick. */
  #try(call: UpstreamCall, plan: Plan, pick: Pick, refused: Served | undefined): Promise<Served> {
    if (plan.attempts > 1) this.#deps.metrics?.retry(call.group);
    return this.#attempt(call, pick, plan.attempts).then((outcome) => {
      // A stream's attempt lasts until the stream ends (its onEnd ends the lease); every other one ends here.
      if (!(outcome.kind === "answer" && outcome.answer.body.kind === "stream")) pick.lease.end();
      if (outcome.kind === "answer") return { answer: outcome.answer, pick };
      if (outcome.kind === "refused") {
        this.#deps.metrics?.failover(pick.endpoint, "content_filter");
        plan.failed(pick.endpoint, { kind: "status", status: outcome.answer.status });
        return this.#next(call, plan, { answer: outcome.answer, pick });
      }
      this.#deps.metrics?.failover(pick.endpoint, failoverReason(outcome.outcome));
      plan.failed(pick.endpoint, outcome.outcome);
      return this.#next(call, plan, refused);
    }, (error) => {
      pick.lease.end();
      throw error;
    });
  }

  #attempt(call: UpstreamCall, pick: Pick, attempt: number): Promise<Outcome> {
    const { endpoint } = pick;
    this.#deps.stats.attempt(endpoint.id);
    const sentAt = performance.now();
    let sent: Promise<UpstreamResult>;
    try {
      sent = this.#deps.upstream.send({
        endpoint,
        method: call.method,
        path: call.path,
        query: call.query,
        body: call.body?.(endpoint),
        contentType: call.contentType,
        clientHeaders: call.clientHeaders,
        requestId: call.requestId,
        signal: call.signal,
      });
    } catch (error) {
      return Promise.reject(error);
    }
    return sent.then((result) => this.#answered(call, pick, attempt, sentAt, result));
  }

  /** What the upstream sent back, classified (a promise only where a step must wait: a body, a store write). */
  #answered(
    call: UpstreamCall,
    pick: Pick,
    attempt: number,
    sentAt: number,
    result: UpstreamResult,
  ): Outcome | Promise<Outcome> {
    const { endpoint } = pick;
    // One clock reading per step (each is a call into the runtime): the upstream's answer, then its whole body.
    const answeredAt = spent(call.trace, sentAt);
    if (result.kind === "aborted") throw new ClientGone();
    if (result.kind === "timeout") return this.#end.failed(endpoint, "timeout", { kind: "timeout" });
    if (result.kind === "connection") {
      return this.#end.failed(endpoint, "connection", { kind: "connection", message: result.message });
    }
    const { response, release } = result;
    this.#deps.metrics?.upstreamLatency(endpoint, (answeredAt - sentAt) / 1000);
    // The upstream's headers are read once, into the record the client's answer is built from.
    const headers = forwardedHeaders(response.headers);
    // Every answer's rate-limit headers: an endpoint with nothing left is skipped until the reset.
    const spentUntil = this.#deps.limits.observe(endpoint.id, headers);
    const meta: AnswerMeta = { endpoint: endpoint.id, attempts: attempt, cache: null };
    const got: Got = { call, pick, response, release, headers, meta, sentAt, answeredAt };
    if (spentUntil === undefined || response.status === 429) return this.#classify(got, spentUntil);
    return this.#deps.health.rateLimitedUntil(endpoint, spentUntil, "x-ratelimit remaining 0")
      .then(() => this.#classify(got, spentUntil));
  }

  /** A success read as the call asks, the endpoint's failure, or the caller's own error. */
  #classify(got: Got, spentUntil: number | undefined): Outcome | Promise<Outcome> {
    const { call, response: { status } } = got;
    if (status >= 200 && status < 300) {
      if (call.passThrough) return this.#end.passThrough(got);
      if (call.stream) return this.#end.stream(got, call.stream);
      return this.#end.whole(got);
    }
    if (call.failure(status)) return this.#failure(got, spentUntil);
    return this.#callerError(got);
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
}
