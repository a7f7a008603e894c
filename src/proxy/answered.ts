/**
 * A 2xx answer, as the attempts stage takes it: a stream committed once its first event arrived, a body passed
 * through unread, or a whole body read (and, for a generation request, parsed). Each is an answer for the client or
 * the endpoint's failure (health and stats noted), which moves the plan on.
 */

import type { AttemptOutcome } from "../balancer/balancer.ts";
import type { EndpointConfig } from "../config/config.ts";
import type { Answer } from "../core/answer.ts";
import type { Route } from "../core/route.ts";
import { ClientGone, ProxyError } from "../errors.ts";
import type { AttemptDeps } from "./attempts.ts";
import { type Got, spent } from "./call.ts";
import { envelopeError, type UpstreamFault } from "./first_error.ts";
import { openStream } from "./stream.ts";
import { tapStream } from "./tap.ts";

export type Outcome =
  | { readonly kind: "answer"; readonly answer: Answer }
  /** The endpoint failed; `fault`: with an error of its own (in a 200), which the client gets if every one does. */
  | { readonly kind: "retry"; readonly outcome: AttemptOutcome; readonly fault?: UpstreamFault }
  /** A content-filter refusal to try elsewhere; the answer if no other endpoint serves. */
  | { readonly kind: "refused"; readonly answer: Answer };

const decoder = new TextDecoder();

/** A 2xx answer of `got`: streamed, passed through or read whole, as its call asks. */
export function answered(deps: AttemptDeps, got: Got): Outcome | Promise<Outcome> {
  const { call } = got;
  if (call.passThrough) return passThrough(deps, got);
  if (call.stream) return stream(deps, got, call.stream);
  return whole(deps, got);
}

/** The endpoint failed this attempt: noted, and the plan moves on. */
export async function failed(
  deps: AttemptDeps,
  endpoint: EndpointConfig,
  cause: string,
  outcome: AttemptOutcome,
  fault?: UpstreamFault,
): Promise<Outcome> {
  deps.stats.failure(endpoint.id);
  await deps.health.failure(endpoint, cause);
  return fault ? { kind: "retry", outcome, fault } : { kind: "retry", outcome };
}

/** A 2xx stream: committed once its first event arrived (a stream that dies before that fails over). */
async function stream(deps: AttemptDeps, got: Got, route: Route): Promise<Outcome> {
  const { call, pick, response, release, meta } = got;
  const { endpoint } = pick;
  const { health, stats } = deps;
  // The hook lives as long as the stream: it holds the request id, not the call (its body, the client's headers).
  const { requestId } = call;
  const opened = await openStream(response, route, {
    onEnd: (end, error) => {
      release();
      pick.lease.end();
      if (end !== "failed") return;
      deps.logger.warn("upstream stream failed mid-way", {
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
    return await failed(deps, endpoint, opened.message, outcome, opened.fault);
  }
  const firstAt = spent(call.trace, got.answeredAt);
  pick.lease.firstByte(firstAt - got.sentAt);
  deps.metrics?.firstToken(endpoint, (firstAt - (call.trace?.startedAt ?? got.sentAt)) / 1000);
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

/**
 * A 2xx whose body streams to the client unread; the attempt (timer, lease) ends with the body. It is the
 * endpoint's success once the body ended (or its client left), its failure when the upstream cut it: the client's
 * read fails then (the cut is passed on), and the endpoint's health counts it.
 */
function passThrough(deps: AttemptDeps, got: Got): Outcome {
  const { call, pick, response, release } = got;
  const { endpoint } = pick;
  const { requestId } = call;
  const answeredMs = got.answeredAt - got.sentAt;
  pick.lease.firstByte(answeredMs);
  const ended = (_complete: boolean, failure?: unknown) => {
    release();
    pick.lease.end();
    if (failure === undefined) {
      deps.stats.success(endpoint.id, answeredMs);
      deps.health.success(endpoint, pick.health)?.catch(() => {});
      return;
    }
    deps.logger.warn("upstream answer cut mid-body", {
      request_id: requestId,
      endpoint: endpoint.id,
      error: failure instanceof Error ? failure.name : undefined,
    });
    deps.stats.failure(endpoint.id);
    deps.health.failure(endpoint, "body cut").catch(() => {});
  };
  const body: Answer["body"] = response.body
    ? { kind: "stream", stream: tapStream(response.body, () => {}, ended) }
    : { kind: "bytes", bytes: "" };
  if (!response.body) ended(true);
  return { kind: "answer", answer: { status: response.status, headers: got.headers, body, meta: got.meta } };
}

/** A 2xx read whole: at once when its bytes came with its head (no promise), else once they have arrived. */
function whole(deps: AttemptDeps, got: Got): Outcome | Promise<Outcome> {
  got.pick.lease.firstByte(got.answeredAt - got.sentAt);
  const whole = got.response.whole;
  return whole ? read(deps, got, whole, got.answeredAt) : readLater(deps, got); // read as it was answered
}

async function readLater(deps: AttemptDeps, got: Got): Promise<Outcome> {
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
      await failed(deps, endpoint, error.code, { kind: "connection", message: error.message });
      throw error;
    }
    const timeout = error instanceof Error && error.name === "TimeoutError";
    const outcome: AttemptOutcome = timeout
      ? { kind: "timeout" }
      : { kind: "connection", message: "answer cut before its end" };
    return await failed(deps, endpoint, timeout ? "timeout" : "body cut", outcome);
  }
  return await read(deps, got, bytes, spent(call.trace, got.answeredAt));
}

/** The whole body read; for a generation request it must be JSON (the parse travels on with the answer). */
function read(
  deps: AttemptDeps,
  got: Got,
  bytes: Uint8Array<ArrayBuffer>,
  readAt: number,
): Outcome | Promise<Outcome> {
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
      return failed(deps, endpoint, "malformed answer", { kind: "malformed" });
    }
    // An error envelope in a 2xx (a gateway's before the endpoint) is no answer either, unless it is the caller's.
    const fault = envelopeError(body.parsed);
    if (fault) {
      return failed(deps, endpoint, `a ${response.status} with ${fault.cause}`, { kind: "malformed" }, fault);
    }
  }
  deps.stats.success(endpoint.id, readAt - got.sentAt);
  const outcome: Outcome = {
    kind: "answer",
    answer: { status: response.status, headers: got.headers, body, meta: got.meta },
  };
  const wrote = deps.health.success(endpoint, pick.health);
  return wrote ? wrote.then(() => outcome) : outcome;
}
