/**
 * The Python LLMProxy's cache markers, for monitoring built against it, written where an answer becomes a Response:
 *
 * - `X-Proxy-Cache-Hit: true|false` on every generation answer: `true` when the answer came from the cache
 *   (`x-llmproxy-cache: HIT`); a coalesced answer (it waited on an identical request's live upstream call) is
 *   `false`, like a miss;
 * - `X-Proxy-Latency-Ms`: whole milliseconds from the request's arrival to its answer's headers (for a stream, its
 *   start);
 * - with `general_settings.python_cache_marker: true`, a top-level `_proxy_cache_hit: true|false` in the JSON body
 *   of a non-streamed 200 answer. It changes bodies, so it is off by default. Pure.
 */

import type { Answer, CacheVerdict } from "../core/answer.ts";

export function pythonHeaders(cache: CacheVerdict | null, elapsedMs: number): Record<string, string> {
  return {
    "x-proxy-cache-hit": cache === "HIT" ? "true" : "false",
    "x-proxy-latency-ms": String(Math.max(0, Math.round(elapsedMs))),
  };
}

/** The answer with `_proxy_cache_hit` added to its JSON object; the same answer when it is not one. */
export function withCacheMarker(answer: Answer): Answer {
  const { body, status } = answer;
  if (status !== 200 || body.kind === "stream") return answer;
  const data = body.kind === "json" ? body.parsed : parse(body.bytes);
  if (data === null || typeof data !== "object" || Array.isArray(data)) return answer;
  const marked = JSON.stringify({ ...data, _proxy_cache_hit: answer.meta.cache === "HIT" });
  const headers: Record<string, string> = {};
  for (const name in answer.headers) {
    if (name.toLowerCase() !== "content-length") headers[name] = answer.headers[name];
  }
  return { ...answer, headers, body: { kind: "bytes", bytes: marked } };
}

const decoder = new TextDecoder();

function parse(bytes: Uint8Array | string): unknown {
  try {
    return JSON.parse(typeof bytes === "string" ? bytes : decoder.decode(bytes));
  } catch {
    return undefined;
  }
}
