/**
 * The HTTP edge of the pipeline: a typed `Answer` becomes a `Response` here, once. What produced it (endpoint,
 * attempts, the cache's verdict, a replayed conversation) is written as `x-llmproxy-*` headers here and nowhere
 * else, and noted in the request's trace for the access log and metrics.
 */

import type { Answer } from "../core/answer.ts";
import type { RequestTrace } from "../metrics/metrics.ts";
import { streamResponse } from "./stream_response.ts";

/** `extra`: more headers the route adds (the Python LLMProxy's `X-Proxy-*`, the proxy's overhead). */
export function respond(
  answer: Answer,
  requestId: string,
  trace?: RequestTrace,
  extra?: Readonly<Record<string, string>>,
): Response {
  const { meta, body, status } = answer;
  // A plain record (a copy: a coalesced answer's headers are shared): the Response validates it once.
  const headers: Record<string, string> = { ...answer.headers, ...extra };
  headers["x-llmproxy-endpoint"] = meta.endpoint;
  headers["x-llmproxy-attempts"] = String(meta.attempts);
  headers["x-request-id"] = requestId;
  if (meta.cache) headers["x-llmproxy-cache"] = meta.cache;
  if (meta.conversation) headers["x-llmproxy-conversation"] = meta.conversation;
  if (trace) {
    trace.served = { endpoint: meta.endpoint, attempts: meta.attempts, cache: meta.cache };
    if (body.kind === "json") trace.answer = body.parsed;
  }
  if (body.kind === "json" && sameAsBytes(body.text, body.bytes, headers)) {
    return new Response(body.text, { status, headers });
  }
  if (body.kind !== "stream") return new Response(body.bytes, { status, headers });
  headers["cache-control"] = "no-cache";
  headers["x-accel-buffering"] = "no";
  return streamResponse(body.stream, status, headers);
}

/**
 * Whether a JSON answer's text goes out as exactly its bytes, so the Response can take the text: Deno copies a
 * byte body into a buffer of its own (a string it encodes once, as it writes), about 2 us per answer. Not when
 * decoding replaced bytes that are not UTF-8 (U+FFFD) or dropped a byte order mark, nor without a content type
 * (a text body would be labelled text/plain).
 */
function sameAsBytes(text: string, bytes: Uint8Array, headers: Record<string, string>): boolean {
  return headers["content-type"] !== undefined && bytes[0] !== 0xef && !text.includes("\uFFFD");
}
