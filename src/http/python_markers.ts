/**
 * The Python LLMProxy's cache markers on every generation answer, for monitoring built against it:
 *
 * - `X-Proxy-Cache-Hit: true|false`: `true` when the answer came from the cache (`x-llmproxy-cache: HIT`); a
 *   coalesced answer (it waited on an identical request's live upstream call) is `false`, like a miss;
 * - `X-Proxy-Latency-Ms`: whole milliseconds from the request's arrival to its answer's headers (for a stream, its
 *   start);
 * - with `general_settings.python_cache_marker: true`, a top-level `_proxy_cache_hit: true|false` in the JSON body
 *   of a non-streamed 200 answer. It changes bodies, so it is off by default.
 *
 * Applied at the edge, once the answer is a `Response`.
 */

import type { ServedBy } from "../metrics/metrics.ts";

export interface MarkerInput {
  /** What served the answer, as the layer that built it recorded it; absent: not known (no cache verdict). */
  readonly served: ServedBy | undefined;
  /** Milliseconds from the request's arrival to now. */
  readonly elapsedMs: number;
  readonly stream: boolean;
  /** `general_settings.python_cache_marker`. */
  readonly bodyMarker: boolean;
}

export async function withPythonMarkers(response: Response, input: MarkerInput): Promise<Response> {
  const hit = input.served?.cache === "HIT";
  const marked = input.bodyMarker && !input.stream && response.status === 200
    ? await markBody(response, hit)
    : response;
  const headers = marked.headers;
  headers.set("x-proxy-cache-hit", hit ? "true" : "false");
  headers.set("x-proxy-latency-ms", String(Math.max(0, Math.round(input.elapsedMs))));
  return marked;
}

/** The answer with `_proxy_cache_hit` added to its JSON object; unchanged when the body is not one. */
async function markBody(response: Response, hit: boolean): Promise<Response> {
  const text = await response.text();
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = undefined;
  }
  const headers = new Headers(response.headers);
  headers.delete("content-length");
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    return new Response(text, { status: response.status, headers });
  }
  (data as Record<string, unknown>)._proxy_cache_hit = hit;
  return new Response(JSON.stringify(data), { status: response.status, headers });
}
