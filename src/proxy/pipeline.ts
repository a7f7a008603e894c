/**
 * The one place where the order of a generation request lives:
 *   balance -> upstream -> classify (answer, fail over, or pass the caller's error back) -> record -> reply.
 * Nothing downstream calls back into an earlier stage.
 */

import type { EndpointConfig, GroupConfig, Settings } from "../config/config.ts";
import { ProxyError } from "../errors.ts";
import type { AttemptOutcome, Balancer, Clock, Pick } from "../balancer/balancer.ts";
import type { HealthTracker } from "../health/tracker.ts";
import type { EndpointHealth } from "../store/store.ts";
import type { Logger } from "../logger.ts";
import { failoverReason, type ProxyMetrics, type RequestTrace } from "../metrics/metrics.ts";
import { type Budgets, usageTokens } from "../ratelimit/budget.ts";
import { parseRetryAfter } from "../ratelimit/headers.ts";
import { StreamUsage } from "../ratelimit/stream_usage.ts";
import type { UpstreamLimits } from "../ratelimit/upstream_limits.ts";
import type { UpstreamClient } from "../upstream/client.ts";
import { type Route, ROUTE_PATHS } from "../upstream/providers.ts";
import { JsonAnswer } from "./answer.ts";
import type { Stats } from "./stats.ts";
import { openStream } from "./stream.ts";

export interface ProxyRequest {
  readonly route: Route;
  readonly group: GroupConfig;
  /** The client's parsed body; `model` is rewritten per endpoint, proxy-only fields are removed. */
  readonly body: Record<string, unknown>;
  readonly stream: boolean;
  readonly clientHeaders: Headers;
  readonly requestId: string;
  readonly signal: AbortSignal;
  /** Only this endpoint may serve the request (Responses affinity). */
  readonly pinned?: string;
  /** Endpoints that must not serve the request (a conversation's owner that just failed). */
  readonly exclude?: readonly string[];
  /** The request's trace (set by the observing middleware): upstream time and waits are added to it. */
  readonly trace?: RequestTrace;
  /** What the cache did with the request (`x-llmproxy-cache` on the answer), when a cache layer is in front. */
  readonly cacheStatus?: string;
  /** The group's endpoint health, already being read by a layer in front (see `PlanOptions.health`). */
  readonly health?: Promise<EndpointHealth[]>;
}

export interface PipelineDeps {
  readonly settings: Settings;
  readonly balancer: Balancer;
  readonly health: HealthTracker;
  readonly upstream: UpstreamClient;
  readonly stats: Stats;
  readonly logger: Logger;
  readonly clock: Clock;
  /** rpm/tpm budgets: estimated before the call (charged by the plan), corrected from `usage` after. */
  readonly budgets: Budgets;
  /** The `x-ratelimit-*` headers of every answer. */
  readonly limits: UpstreamLimits;
  readonly metrics?: ProxyMetrics;
}

/** Response headers never copied from the upstream to the client. */
const DROPPED_RESPONSE_HEADERS = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "content-encoding",
  "proxy-authenticate",
  "trailer",
  "upgrade",
  "set-cookie",
  "x-request-id",
  "date",
  "server",
]);

/** Whether an upstream status moves the request to another endpoint. */
export function isFailoverStatus(status: number): boolean {
  if (status >= 500 || status === 408 || status === 429) return true;
  if (status === 401 || status === 403 || status === 404) return true;
  if (status >= 300 && status < 400) return true;
  return false;
}

/** What one attempt came to: the client's answer (a stream holds its lease until it ends), or a retry. */
type AttemptResult =
  | { kind: "reply"; response: Response; streaming?: boolean }
  | { kind: "retry"; outcome: AttemptOutcome };

export class ClientGone extends ProxyError {
  constructor() {
    super(499, "invalid_request_error", "client_closed_request", "The client closed the request");
  }
}

export class Pipeline {
  readonly #deps: PipelineDeps;

  constructor(deps: PipelineDeps) {
    this.#deps = deps;
  }

  async handle(request: ProxyRequest): Promise<Response> {
    const { settings, balancer } = this.#deps;
    const plan = balancer.plan(request.group, {
      maxAttempts: settings.numRetries + 1,
      maxWaitMs: settings.maxWaitForCapacityMs,
      signal: request.signal,
      tokens: this.#deps.budgets.estimate(request.group, request.route, request.body),
      pinned: request.pinned,
      exclude: request.exclude,
      onWait: (ms) => this.#waiting(request, ms),
      health: request.health,
    });
    const { cache: _cache, ...forwarded } = request.body;
    while (true) {
      let pick: Pick | undefined;
      try {
        pick = await plan.next();
      } catch (error) {
        if (request.signal.aborted) throw new ClientGone();
        throw error;
      }
      if (!pick) throw await plan.exhaustedError();
      if (plan.attempts > 1) this.#deps.metrics?.retry(request.group.name);
      let outcome: AttemptResult | undefined;
      try {
        outcome = await this.#attempt(request, forwarded, pick, plan.attempts);
      } finally {
        // A stream's attempt lasts until the stream ends (its onEnd ends the lease); every other one ends here.
        if (!(outcome?.kind === "reply" && outcome.streaming)) pick.lease.end();
      }
      if (outcome.kind === "reply") return outcome.response;
      this.#deps.metrics?.failover(pick.endpoint, failoverReason(outcome.outcome));
      plan.failed(pick.endpoint, outcome.outcome);
    }
  }

  async #attempt(
    request: ProxyRequest,
    forwarded: Record<string, unknown>,
    pick: Pick,
    attempts: number,
  ): Promise<AttemptResult> {
    const { upstream, health, stats, clock } = this.#deps;
    const { endpoint } = pick;
    stats.attempt(endpoint.id);
    const sentAt = performance.now();
    const result = await upstream.send({
      endpoint,
      method: "POST",
      path: ROUTE_PATHS[request.route],
      body: JSON.stringify({ ...forwarded, model: endpoint.model }),
      clientHeaders: request.clientHeaders,
      requestId: request.requestId,
      signal: request.signal,
    });
    // One clock reading per step (each is a call into the runtime): the upstream's answer, then its whole body.
    const answeredAt = this.#spent(request, sentAt);
    if (result.kind === "aborted") throw new ClientGone();
    if (result.kind === "timeout" || result.kind === "connection") {
      const outcome: AttemptOutcome = result.kind === "timeout"
        ? { kind: "timeout" }
        : { kind: "connection", message: result.message };
      await this.#failed(endpoint, result.kind);
      return { kind: "retry", outcome };
    }
    const { response, release } = result;
    const status = response.status;
    this.#deps.metrics?.upstreamLatency(endpoint, (answeredAt - sentAt) / 1000);
    // The upstream's headers are read once, into the record the client's answer is built from.
    const headers = forwardedHeaders(response.headers);
    // Every answer's rate-limit headers: an endpoint with nothing left is skipped until the reset.
    const spentUntil = this.#deps.limits.observe(endpoint.id, headers);
    if (spentUntil !== undefined && status !== 429) {
      await health.rateLimitedUntil(endpoint, spentUntil, "x-ratelimit remaining 0");
    }
    if (status >= 200 && status < 300) {
      if (!request.stream) pick.lease.firstByte(answeredAt - sentAt);
      if (request.stream) {
        // Only a tpm budget needs the stream's usage report; other streams are not looked into.
        const usage = pick.reservation?.endpoint.tpm !== undefined ? new StreamUsage() : undefined;
        const opened = await openStream(response, request.route, {
          onChunk: usage && ((chunk) => usage.push(chunk)),
          onEnd: (end, error) => {
            release();
            pick.lease.end();
            if (end === "complete" && usage) this.#deps.budgets.settleTokens(pick.reservation, usage.tokens);
            if (end === "failed") {
              this.#deps.logger.warn("upstream stream failed mid-way", {
                request_id: request.requestId,
                endpoint: endpoint.id,
                error: error instanceof Error ? error.name : undefined,
              });
              stats.failure(endpoint.id);
              health.failure(endpoint, "stream cut").catch(() => {});
            }
          },
        });
        if (!opened.ok) {
          release();
          if (request.signal.aborted) throw new ClientGone();
          await this.#failed(endpoint, opened.message);
          const outcome: AttemptOutcome = opened.timeout
            ? { kind: "timeout" }
            : { kind: "connection", message: opened.message };
          return { kind: "retry", outcome };
        }
        const firstAt = this.#spent(request, answeredAt);
        pick.lease.firstByte(firstAt - sentAt);
        this.#deps.metrics?.firstToken(endpoint, (firstAt - (request.trace?.startedAt ?? sentAt)) / 1000);
        stats.success(endpoint.id, firstAt - sentAt);
        await health.success(endpoint, pick.health);
        addProxyHeaders(headers, endpoint, attempts, request);
        headers["cache-control"] = "no-cache";
        headers["x-accel-buffering"] = "no";
        return { kind: "reply", response: new Response(opened.body, { status, headers }), streaming: true };
      }
      let bytes: Uint8Array<ArrayBuffer>;
      try {
        bytes = await response.bytes();
      } catch (error) {
        release();
        if (request.signal.aborted) throw new ClientGone();
        const timeout = error instanceof Error && error.name === "TimeoutError";
        await this.#failed(endpoint, timeout ? "timeout" : "body cut");
        const outcome: AttemptOutcome = timeout
          ? { kind: "timeout" }
          : { kind: "connection", message: "answer cut before its end" };
        return { kind: "retry", outcome };
      }
      release();
      const readAt = this.#spent(request, answeredAt);
      // A 200 that is not JSON is the endpoint's failure, not an answer. The parse is kept for the layers around.
      const text = decoder.decode(bytes);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        await this.#failed(endpoint, "malformed answer");
        return { kind: "retry", outcome: { kind: "malformed" } };
      }
      stats.success(endpoint.id, readAt - sentAt);
      await health.success(endpoint, pick.health);
      if (pick.reservation) this.#deps.budgets.settleTokens(pick.reservation, usageTokens(parsed));
      addProxyHeaders(headers, endpoint, attempts, request);
      return { kind: "reply", response: new JsonAnswer(bytes, text, parsed, { status, headers }) };
    }
    if (isFailoverStatus(status)) {
      await response.body?.cancel().catch(() => {});
      release();
      stats.failure(endpoint.id);
      if (status === 429) {
        const now = clock.now();
        const resetMs = spentUntil !== undefined ? spentUntil - now : undefined;
        await health.rateLimited(endpoint, parseRetryAfter(headers, now) ?? resetMs);
      } else await health.failure(endpoint, `HTTP ${status}`);
      return { kind: "retry", outcome: { kind: "status", status } };
    }
    // The caller's own error (400, 413, 422, ...): the upstream's body goes back as it is.
    const bytes = await response.bytes().catch(() => new Uint8Array(0));
    release();
    addProxyHeaders(headers, endpoint, attempts, request);
    return { kind: "reply", response: callerError(status, bytes, headers) };
  }

  async #failed(endpoint: EndpointConfig, cause: string): Promise<void> {
    this.#deps.stats.failure(endpoint.id);
    await this.#deps.health.failure(endpoint, cause);
  }

  /** Adds the time since `since` to the request's upstream time (the rest is the proxy's overhead); returns now. */
  #spent(request: ProxyRequest, since: number): number {
    const now = performance.now();
    if (request.trace) request.trace.upstreamMs += now - since;
    return now;
  }

  #waiting(request: ProxyRequest, ms: number): void {
    if (request.trace) request.trace.waitMs += ms;
    this.#deps.metrics?.capacityWait(request.group.name, ms / 1000);
  }
}

const decoder = new TextDecoder();

/**
 * The upstream's headers that travel on to the client (hop-by-hop and the like removed), as a plain record: the
 * client's Response validates it once, where a Headers object is validated on every set and again.
 */
export function forwardedHeaders(upstream: Headers): Record<string, string> {
  const headers: Record<string, string> = {};
  upstream.forEach((value, name) => {
    if (!DROPPED_RESPONSE_HEADERS.has(name)) headers[name] = value;
  });
  return headers;
}

/**
 * Adds the proxy's own headers to a client answer (endpoint, attempts, request id and the cache's verdict) and
 * notes the same in the request's trace.
 */
export function addProxyHeaders(
  headers: Record<string, string>,
  endpoint: EndpointConfig,
  attempts: number,
  request: { readonly requestId: string; readonly cacheStatus?: string; readonly trace?: RequestTrace },
): Record<string, string> {
  headers["x-llmproxy-endpoint"] = endpoint.id;
  headers["x-llmproxy-attempts"] = String(attempts);
  headers["x-request-id"] = request.requestId;
  if (request.cacheStatus) headers["x-llmproxy-cache"] = request.cacheStatus;
  if (request.trace) {
    request.trace.served = { endpoint: endpoint.id, attempts, cache: request.cacheStatus ?? null };
  }
  return headers;
}

/** A caller error passes through as the upstream wrote it when that is an OpenAI envelope; else it is wrapped. */
function callerError(
  status: number,
  bytes: Uint8Array<ArrayBuffer>,
  headers: Record<string, string>,
): Response {
  const text = decoder.decode(bytes);
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object" && "error" in parsed) {
      headers["content-type"] = "application/json";
      return new Response(bytes, { status, headers });
    }
  } catch {
    // not JSON: wrapped below
  }
  const envelope = {
    error: {
      message: `Upstream answered HTTP ${status}: ${text.slice(0, 500)}`,
      type: "invalid_request_error",
      param: null,
      code: `upstream_${status}`,
    },
  };
  headers["content-type"] = "application/json";
  return new Response(JSON.stringify(envelope), { status, headers });
}
