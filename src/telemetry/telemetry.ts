/**
 * OpenTelemetry tracing and GenAI metrics, through `@opentelemetry/api` and the providers Deno registers when its
 * built-in OpenTelemetry is on (`OTEL_DENO=true`): Deno exports them over OTLP/HTTP as the standard `OTEL_*`
 * variables say. This module is loaded only then (`tracingWanted`, `services.ts`): with tracing off nothing of it
 * is even imported.
 *
 * - a span per generation request (`chat gpt-4o-mini`), made active while the request is handled, with the
 *   GenAI request and response attributes, the cache verdict and the key's name;
 * - a CLIENT child span per upstream attempt, from the upstream client's observer: endpoint, status, time to
 *   first byte; it ends when the attempt's body is read or given up (for a stream, when the stream ends);
 * - the `gen_ai.client.token.usage` and `gen_ai.client.operation.duration` histograms.
 *
 * Attributes hold names, numbers and verdicts only: never a key, a URL beyond its host, or request or answer text.
 */

import {
  type Attributes,
  context,
  createContextKey,
  type Histogram,
  metrics,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import type { EndpointConfig, GroupConfig } from "../config/config.ts";
import type { Logger } from "../logger.ts";
import type { UsageSink } from "../proxy/usage.ts";
import type { AttemptObserver, AttemptWatch } from "../upstream/attempt.ts";
import type { UpstreamRequest } from "../upstream/client.ts";
import { VERSION } from "../version.ts";
import { type AnswerFacts, operationName, providerName } from "./genai.ts";

/** The conventions' advised bucket boundaries. */
const TOKEN_BUCKETS = [
  1,
  4,
  16,
  64,
  256,
  1024,
  4096,
  16384,
  65536,
  262144,
  1048576,
  4194304,
  16777216,
  67108864,
];
const DURATION_BUCKETS = [
  0.01,
  0.02,
  0.04,
  0.08,
  0.16,
  0.32,
  0.64,
  1.28,
  2.56,
  5.12,
  10.24,
  20.48,
  40.96,
  81.92,
];

/** Most distinct `gen_ai.response.model` values the histograms carry. */
export const MAX_RESPONSE_MODELS = 50;

/** The request being handled, found by the attempt observer in the active context. */
const REQUEST = createContextKey("llmproxy.request");

/** How a traced request ended, as the tracing middleware saw it. */
export interface RequestOutcome {
  /** Upstream path of the route (`chat/completions`, ...). */
  readonly path: string;
  /** The model group the client asked for; "" when the body never named one. */
  readonly group: string;
  readonly status: number;
  readonly stream: boolean;
  readonly endpoint?: string;
  readonly attempts?: number;
  readonly cache?: string | null;
  readonly keyName?: string;
  readonly facts: AnswerFacts;
  /** Why it failed, when it did (`error.type`): an HTTP status, `timeout`, `client_closed`, ... */
  readonly errorType?: string;
}

export class RequestSpan {
  readonly span: Span;
  readonly context;
  /** Upstream attempts made so far. */
  attempts = 0;
  /** The serving endpoint's provider, noted by its attempt. */
  provider?: string;
  readonly #telemetry: Telemetry;
  readonly #startedAt = performance.now();
  #ended = false;

  constructor(telemetry: Telemetry, tracer: Tracer) {
    this.#telemetry = telemetry;
    this.span = tracer.startSpan("llmproxy request", { kind: SpanKind.INTERNAL });
    this.context = trace.setSpan(context.active(), this.span).setValue(REQUEST, this);
  }

  /** Runs `fn` with this request's span active, so upstream attempts become its children. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    return context.with(this.context, fn);
  }

  end(outcome: RequestOutcome): void {
    if (this.#ended) return;
    this.#ended = true;
    const operation = operationName(outcome.path);
    const { facts } = outcome;
    const common: Attributes = { "gen_ai.operation.name": operation };
    if (outcome.group) common["gen_ai.request.model"] = outcome.group;
    if (this.provider) common["gen_ai.provider.name"] = this.provider;
    if (facts.responseModel) common["gen_ai.response.model"] = facts.responseModel;
    const attributes: Attributes = {
      ...common,
      "http.response.status_code": outcome.status,
      "llmproxy.stream": outcome.stream,
      "llmproxy.attempts": outcome.attempts ?? this.attempts,
    };
    if (outcome.endpoint) attributes["llmproxy.endpoint"] = outcome.endpoint;
    if (outcome.cache) attributes["llmproxy.cache"] = outcome.cache;
    if (outcome.keyName) attributes["llmproxy.key.name"] = outcome.keyName;
    if (facts.responseId) attributes["gen_ai.response.id"] = facts.responseId;
    if (facts.inputTokens !== undefined) attributes["gen_ai.usage.input_tokens"] = facts.inputTokens;
    if (facts.outputTokens !== undefined) attributes["gen_ai.usage.output_tokens"] = facts.outputTokens;
    if (outcome.errorType) {
      attributes["error.type"] = outcome.errorType;
      common["error.type"] = outcome.errorType;
      this.span.setStatus({ code: SpanStatusCode.ERROR });
    }
    this.span.updateName(outcome.group ? `${operation} ${outcome.group}` : operation);
    this.span.setAttributes(attributes);
    this.span.end();
    this.#telemetry.recordOperation(common, (performance.now() - this.#startedAt) / 1000, facts);
  }
}

export class Telemetry {
  readonly #tracer = trace.getTracer("llmproxy", VERSION);
  readonly #tokens: Histogram;
  readonly #duration: Histogram;
  /** The response models the histograms are labelled with (at most `MAX_RESPONSE_MODELS`). */
  readonly #responseModels = new Set<string>();

  constructor() {
    const meter = metrics.getMeter("llmproxy", VERSION);
    this.#tokens = meter.createHistogram("gen_ai.client.token.usage", {
      description: "Tokens used per request, by gen_ai.token.type (input or output)",
      unit: "{token}",
      advice: { explicitBucketBoundaries: TOKEN_BUCKETS },
    });
    this.#duration = meter.createHistogram("gen_ai.client.operation.duration", {
      description:
        "Time from receiving a generation request to the end of its answer (streams: the last chunk)",
      unit: "s",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
  }

  startRequest(): RequestSpan {
    return new RequestSpan(this, this.#tracer);
  }

  /**
   * Records the histograms. The upstream names the response model, so it labels them only while few distinct
   * names were seen: one that answers a new name each time would grow every export (by ~2 KB a name, up to the
   * SDK's 2,000 series an instrument) and the memory behind it. Spans keep the name in every case.
   */
  recordOperation(attributes: Attributes, seconds: number, facts: AnswerFacts): void {
    const model = attributes["gen_ai.response.model"];
    if (typeof model === "string" && !this.#responseModels.has(model)) {
      if (this.#responseModels.size < MAX_RESPONSE_MODELS) this.#responseModels.add(model);
      else delete attributes["gen_ai.response.model"];
    }
    this.#duration.record(seconds, attributes);
    if (facts.inputTokens !== undefined) {
      this.#tokens.record(facts.inputTokens, { ...attributes, "gen_ai.token.type": "input" });
    }
    if (facts.outputTokens !== undefined) {
      this.#tokens.record(facts.outputTokens, { ...attributes, "gen_ai.token.type": "output" });
    }
  }

  /** A usage sink (record stage) that notes who sent the request, for the request span's `llmproxy.key.name`. */
  readonly identities: UsageSink = (report) => {
    const { identity, trace } = report.request;
    if (identity && trace) trace.keyName = identity.id;
  };

  /**
   * With the `fetch` upstream client, Deno's own instrumentation adds a span per call that carries the upstream
   * URL with its query (`url.full`, `url.query`), and nothing lets the proxy leave it out. One warning names the
   * endpoints whose URLs carry a query of their own (`default_query`, or one in `base_url`): its values may be
   * secrets, and they are exported.
   */
  warnFetchSpans(groups: readonly GroupConfig[], logger: Logger): void {
    const exposed = groups.flatMap((group) => group.endpoints)
      .filter((endpoint) => Object.keys(endpoint.query ?? {}).length > 0 || endpoint.baseUrl.includes("?"))
      .map((endpoint) => endpoint.id);
    if (exposed.length === 0) return;
    logger.warn(
      "tracing with upstream_client fetch: Deno's own fetch spans export these endpoints' upstream URLs with " +
        "their query strings (use the http1 client, or keep secrets out of their URLs)",
      { endpoints: exposed },
    );
  }

  /** The upstream client's observer: a CLIENT span per attempt, a child of the active request's span. */
  readonly attempts: AttemptObserver = {
    start: (request) => new AttemptSpan(this.#tracer, request),
  };
}

class AttemptSpan implements AttemptWatch {
  readonly #span: Span;
  readonly #sentAt = performance.now();

  constructor(tracer: Tracer, request: UpstreamRequest) {
    const parent = context.active();
    const owner = parent.getValue(REQUEST) as RequestSpan | undefined;
    const { endpoint } = request;
    const operation = operationName(request.path);
    const provider = providerName(endpoint.provider);
    let attempt = 1;
    if (owner) {
      attempt = ++owner.attempts;
      owner.provider = provider;
    }
    const server = serverOf(endpoint);
    this.#span = tracer.startSpan(`${operation} ${endpoint.model}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": endpoint.model,
        "server.address": server.address,
        "server.port": server.port,
        "llmproxy.endpoint": endpoint.id,
        "llmproxy.group": endpoint.group,
        "llmproxy.attempt": attempt,
      },
    }, parent);
  }

  answered(status: number): void {
    const ms = performance.now() - this.#sentAt;
    this.#span.setAttributes({ "http.response.status_code": status, "llmproxy.upstream.ttfb_ms": round(ms) });
    this.#span.addEvent("response headers");
    if (status >= 400) {
      this.#span.setAttribute("error.type", String(status));
      this.#span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }

  failed(kind: "timeout" | "connection" | "aborted"): void {
    this.#span.setAttribute("error.type", kind === "aborted" ? "client_closed" : kind);
    this.#span.setStatus({ code: SpanStatusCode.ERROR });
  }

  ended(): void {
    this.#span.end();
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;

/** An endpoint's host and port, parsed once per endpoint (never its path or query: they may carry secrets). */
const servers = new WeakMap<EndpointConfig, { address: string; port: number }>();

function serverOf(endpoint: EndpointConfig): { address: string; port: number } {
  let server = servers.get(endpoint);
  if (!server) {
    const url = new URL(endpoint.baseUrl);
    server = { address: url.hostname, port: Number(url.port) || (url.protocol === "https:" ? 443 : 80) };
    servers.set(endpoint, server);
  }
  return server;
}
