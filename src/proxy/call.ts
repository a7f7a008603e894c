/**
 * What the attempts stage is asked to do and what it hands back: one upstream call (method, path, a body per
 * endpoint, how its answer is read, which statuses are the endpoint's failure), made to each endpoint of a plan in
 * turn; and the answer with the pick that produced it. A new upstream route is a new `UpstreamCall`.
 */

import type { HeaderReader } from "../core/header_reader.ts";
import type { Pick } from "../balancer/balancer.ts";
import type { EndpointConfig } from "../config/config.ts";
import type { Answer, AnswerMeta } from "../core/answer.ts";
import type { Route } from "../core/route.ts";
import type { RequestTrace } from "../metrics/metrics.ts";
import type { AbortLike } from "../core/abort_like.ts";
import type { StreamedBody } from "../upstream/http1_chunked.ts";
import type { Reply } from "../upstream/reply.ts";

/** One upstream call, as the attempts stage makes it to each endpoint of the plan. */
export interface UpstreamCall {
  readonly method: "GET" | "POST" | "DELETE";
  /** Path below `/v1`. */
  readonly path: string;
  readonly query?: string;
  /**
   * The request body for an endpoint (its own `model`); none for GET and DELETE. A stream is an upload passed
   * through as it arrives; chunks may share one buffer (see `surface/upload.ts`).
   */
  readonly body?: (endpoint: EndpointConfig) => string | ReadableStream<Uint8Array> | StreamedBody;
  /** The body's content type; default `application/json`. */
  readonly contentType?: string;
  /** A 2xx is a server-sent-event stream of this route (else a whole body). */
  readonly stream?: Route;
  /** A 2xx body streams to the client as it arrives, unread (binary audio, file content). */
  readonly passThrough?: boolean;
  /**
   * Makes something upstream each time it is received (creating a batch): sent at most once per attempt, on a
   * new connection (`Http1Init.once`).
   */
  readonly once?: boolean;
  /** A 2xx must parse as JSON, else it is the endpoint's failure (generation answers). */
  readonly json: boolean;
  /** Whether an upstream status is the endpoint's failure (the plan moves on) rather than an answer. */
  readonly failure: (status: number) => boolean;
  /** Caller errors are wrapped in the OpenAI envelope when they are not one (generation requests). */
  readonly wrapErrors: boolean;
  /** An Azure content-filter refusal moves on to another endpoint (the group's `content_filter_fallback`). */
  readonly contentFilterFallback?: boolean;
  /** The model group, for metrics; "" when none. */
  readonly group: string;
  readonly clientHeaders: HeaderReader;
  readonly requestId: string;
  /** The signal of the call: the client's, or a coalesced flight's (aborted once every follower left). */
  readonly signal: AbortLike;
  readonly trace?: RequestTrace;
}

/** An answer from an upstream, and the pick that produced it (its budget reservation is settled when recorded). */
export interface Served {
  readonly answer: Answer;
  readonly pick: Pick;
}

/** What one attempt got back before the attempts stage classified it. */
export interface Got {
  readonly call: UpstreamCall;
  readonly pick: Pick;
  readonly response: Reply;
  readonly release: () => void;
  readonly headers: Record<string, string>;
  readonly meta: AnswerMeta;
  readonly sentAt: number;
  readonly answeredAt: number;
}

/** Adds the time since `since` to the request's upstream time (the rest is the proxy's overhead); returns now. */
export function spent(trace: RequestTrace | undefined, since: number): number {
  const now = performance.now();
  if (trace) trace.upstreamMs += now - since;
  return now;
}
