/**
 * The upstream call each kind of request makes (pure): a generation request's body with each endpoint's model, a
 * `/responses/{id}` call. The pipeline runs them through its attempts.
 */

import type { Admitted, GenerationRequest, ItemRequest } from "../core/request.ts";
import { ROUTE_PATHS } from "../core/route.ts";
import type { AbortLike } from "../core/abort_like.ts";
import type { UpstreamCall } from "./call.ts";
import { isFailoverStatus, isItemFailureStatus } from "./upstream_answer.ts";
import { heavy, sizeOf } from "../util/heavy.ts";

type Generation = Admitted<GenerationRequest>;

/**
 * The upstream call of a generation request: its body with each endpoint's model, proxy-only fields removed.
 * The body is serialised once (as big work when big); each attempt only puts its endpoint's model in front.
 */
export function generationCall(request: Generation, signal: AbortLike): UpstreamCall | Promise<UpstreamCall> {
  const { cache: _cache, model: _model, ...forwarded } = request.body;
  const rest = heavy(sizeOf(request.body), () => JSON.stringify(forwarded));
  return rest instanceof Promise
    ? rest.then((text) => upstreamCall(request, signal, text))
    : upstreamCall(request, signal, rest);
}

function upstreamCall(request: Generation, signal: AbortLike, rest: string): UpstreamCall {
  return {
    method: "POST",
    path: ROUTE_PATHS[request.route],
    body: (endpoint) =>
      `{"model":${JSON.stringify(endpoint.model)}${rest === "{}" ? "}" : "," + rest.slice(1)}`,
    stream: request.stream ? request.route : undefined,
    json: true,
    failure: isFailoverStatus,
    wrapErrors: true,
    contentFilterFallback: request.group.contentFilterFallback,
    group: request.group.name,
    clientHeaders: request.clientHeaders,
    requestId: request.requestId,
    signal,
    trace: request.trace,
  };
}

/**
 * The upstream call of `/responses/{id}`: small JSON documents, read whole and passed on, but for `?stream=true`
 * (the SDK's `retrieve(id, { stream: true })`): a background response's events, passed on as they come for as
 * long as it runs.
 */
export function itemCall(request: Admitted<ItemRequest>): UpstreamCall {
  return {
    method: request.method,
    path: `responses/${encodeURIComponent(request.responseId)}${request.suffix}`,
    query: request.query,
    passThrough: /(?:^|&)stream=true(?:&|$)/.test(request.query),
    json: false,
    failure: isItemFailureStatus,
    wrapErrors: false,
    group: "",
    clientHeaders: request.clientHeaders,
    requestId: request.requestId,
    signal: request.signal,
    trace: request.trace,
  };
}
