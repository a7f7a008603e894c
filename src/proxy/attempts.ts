/**
 * The attempts stage: walks a plan, one upstream call per pick, and classifies what came back: an answer for the
 * client (a success, or the caller's own error), or a failure that moves on to the next pick (health and metrics
 * noted). Every upstream call of the proxy goes through here: generation requests and `/responses/{id}` alike.
 * Per-attempt watchers (dashboard histories, tracing spans) hook into the upstream client, which every attempt
 * passes (`upstream/attempt.ts`).
 */

import type { AttemptOutcome, Pick } from "../balancer/balancer.ts";
import type { EndpointConfig } from "../config/config.ts";
import type { Answer, AnswerMeta } from "../core/answer.ts";
import type { Route } from "../core/route.ts";
import { ClientGone, ProxyError } from "../errors.ts";
import type { HealthTracker } from "../health/tracker.ts";
import type { Logger } from "../logger.ts";
import { failoverReason, type ProxyMetrics } from "../metrics/metrics.ts";
import { parseRetryAfter } from "../ratelimit/headers.ts";
import type { UpstreamLimits } from "../ratelimit/upstream_limits.ts";
import type { UpstreamClient } from "../upstream/client.ts";
import type { Plan } from "./plan.ts";
import type { Stats } from "./stats.ts";
import { type Got, type Served, spent, type UpstreamCall } from "./call.ts";
import { openStream } from "./stream.ts";
import { tapStream } from "./tap.ts";
import { callerError, forwardedHeaders } from "./upstream_answer.ts";
import { envelopeError } from "./first_error.ts";
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

type Outcome =
  | { readonly kind: "answer"; readonly answer: Answer }
  | { readonly kind: "retry"; readonly outcome: AttemptOutcome }
  /** A content-filter refusal to try elsewhere; the answer if no other endpoint serves. */
  | { readonly kind: "refused"; readonly answer: Answer };

const decoder = new TextDecoder();

export class Attempts {
  readonly #deps: AttemptDeps;

  constructor(deps: AttemptDeps) {
    this.#deps = deps;
  }

  /** Tries the plan's endpoints in turn until one answers; throws the plan's error when it runs out. */
  async run(call: UpstreamCall, plan: Plan): Promise<Served> {
    let refused: Served | undefined;
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
      if (outcome.kind === "refused") {
        refused = { answer: outcome.answer, pick };
        this.#deps.metrics?.failover(pick.endpoint, "content_filter");
        plan.failed(pick.endpoint, { kind: "status", status: outcome.answer.status });
        continue;
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
    });
    // One clock reading per step (each is a call into the runtime): the upstream's answer, then its whole body.
    const answeredAt = spent(call.trace, sentAt);
    if (result.kind === "aborted") throw new ClientGone();
    if (result.kind === "timeout") return await this.#failed(endpoint, "timeout", { kind: "timeout" });
    if (result.kind === "connection") {
      return await this.#failed(endpoint, "connection", { kind: "connection", message: result.message });
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
      if (call.passThrough) return await this.#passThrough(got);
      if (call.stream) return await this.#stream(got, call.stream);
      const whole = this.#whole(got);
      return whole instanceof Promise ? await whole : whole;
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

  /** A 2xx stream: committed once its first event arrived (a stream that dies before that fails over). */
  async #stream(got: Got, route: Route): Promise<Outcome> {
    const { call, pick, response, release, meta } = got;
    const { endpoint } = pick;
    const { health, stats } = this.#deps;
    // The hook lives as long as the stream: it holds the request id, not the call (its body, the client's headers).
    const { requestId } = call;
    const opened = await openStream(response, route, {
      onEnd: (end, error) => {
        release();
        pick.lease.end();
        if (end !== "failed") return;
        this.#deps.logger.warn("upstream stream failed mid-way", {
          request_id: requestId,
          endpoint: endpoint.id,
          error: error instanceof Error ? error.name : undefined,
        });
        stats.failure(endpoint.id);
        health.failure(endpoint, "stream cut").catch(() => {});
      },
    });
    if (!opened.ok) {
      release();
      if (call.signal.aborted) throw new ClientGone();
      const outcome: AttemptOutcome = opened.timeout
        ? { kind: "timeout" }
        : { kind: "connection", message: opened.message };
      return await this.#failed(endpoint, opened.message, outcome);
    }
    const firstAt = spent(call.trace, got.answeredAt);
    pick.lease.firstByte(firstAt - got.sentAt);
    this.#deps.metrics?.firstToken(endpoint, (firstAt - (call.trace?.startedAt ?? got.sentAt)) / 1000);
    stats.success(endpoint.id, firstAt - got.sentAt);
    await health.success(endpoint, pick.health);
    const answer: Answer = {
      status: response.status,
      headers: got.headers,
      body: { kind: "stream", stream: opened.body },
      meta,
    };
    return { kind: "answer", answer };
  }

  /** A 2xx whose body streams to the client unread; the attempt (timer, lease) ends with the body. */
  async #passThrough(got: Got): Promise<Outcome> {
    const { pick, response, release } = got;
    pick.lease.firstByte(got.answeredAt - got.sentAt);
    this.#deps.stats.success(pick.endpoint.id, got.answeredAt - got.sentAt);
    await this.#deps.health.success(pick.endpoint, pick.health);
    const ended = () => {
      release();
      pick.lease.end();
    };
    const body: Answer["body"] = response.body
      ? { kind: "stream", stream: tapStream(response.body, () => {}, ended) }
      : { kind: "bytes", bytes: "" };
    if (!response.body) ended();
    return {
      kind: "answer",
      answer: { status: response.status, headers: got.headers, body, meta: got.meta },
    };
  }

  /** A 2xx read whole: at once when its bytes came with its head (no promise), else once they have arrived. */
  #whole(got: Got): Outcome | Promise<Outcome> {
    got.pick.lease.firstByte(got.answeredAt - got.sentAt);
    const whole = got.response.whole;
    return whole ? this.#read(got, whole, got.answeredAt) : this.#readLater(got); // read as it was answered
  }

  async #readLater(got: Got): Promise<Outcome> {
    const { call, pick, response, release } = got;
    const { endpoint } = pick;
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await response.bytes();
    } catch (error) {
      release();
      if (call.signal.aborted) throw new ClientGone();
      // Over `max_response_bytes`: the endpoint's failure, and a 502 to the client (not another attempt).
      if (error instanceof ProxyError) {
        await this.#failed(endpoint, error.code, { kind: "connection", message: error.message });
        throw error;
      }
      const timeout = error instanceof Error && error.name === "TimeoutError";
      const outcome: AttemptOutcome = timeout
        ? { kind: "timeout" }
        : { kind: "connection", message: "answer cut before its end" };
      return await this.#failed(endpoint, timeout ? "timeout" : "body cut", outcome);
    }
    return await this.#read(got, bytes, spent(call.trace, got.answeredAt));
  }

  /** The whole body read; for a generation request it must be JSON (the parse travels on with the answer). */
  #read(got: Got, bytes: Uint8Array<ArrayBuffer>, readAt: number): Outcome | Promise<Outcome> {
    const { call, pick, response } = got;
    const { endpoint } = pick;
    got.release();
    let body: Answer["body"] = { kind: "bytes", bytes };
    if (call.json) {
      // A 200 that is not JSON is the endpoint's failure, not an answer.
      const text = decoder.decode(bytes);
      try {
        body = { kind: "json", bytes, text, parsed: JSON.parse(text) };
      } catch {
        return this.#failed(endpoint, "malformed answer", { kind: "malformed" });
      }
      // An error envelope in a 2xx (a gateway's before the endpoint) is no answer either, unless it is the caller's.
      const error = envelopeError(body.parsed);
      if (error) {
        return this.#failed(endpoint, `error in a ${response.status}: ${error}`, { kind: "malformed" });
      }
    }
    this.#deps.stats.success(endpoint.id, readAt - got.sentAt);
    const outcome: Outcome = {
      kind: "answer",
      answer: { status: response.status, headers: got.headers, body, meta: got.meta },
    };
    const wrote = this.#deps.health.success(endpoint, pick.health);
    return wrote ? wrote.then(() => outcome) : outcome;
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

  async #failed(endpoint: EndpointConfig, cause: string, outcome: AttemptOutcome): Promise<Outcome> {
    this.#deps.stats.failure(endpoint.id);
    await this.#deps.health.failure(endpoint, cause);
    return { kind: "retry", outcome };
  }
}
