/**
 * Cache-hit latency at the client: the second identical request must come back with `x-llmproxy-cache: HIT`;
 * when it does, wrk sends that same request over one connection (every answer a hit) for the latency
 * percentiles. When the proxy does not answer HITs the measurement is "n/a", with the reason.
 */

import { runWrk, type WrkResult } from "./wrk.ts";

export type CacheHits =
  | { readonly ok: true; readonly wrk: WrkResult }
  | { readonly ok: false; readonly reason: string };

export interface CacheHitOptions {
  readonly url: string;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly durationS: number;
}

async function cacheHeader(options: CacheHitOptions): Promise<string> {
  const response = await fetch(options.url, {
    method: "POST",
    headers: options.headers,
    body: options.body,
    signal: AbortSignal.timeout(10_000),
  });
  await response.body?.cancel();
  if (response.status !== 200) return `HTTP ${response.status}`;
  return response.headers.get("x-llmproxy-cache") ?? "(no x-llmproxy-cache header)";
}

export async function measureCacheHits(options: CacheHitOptions): Promise<CacheHits> {
  const first = await cacheHeader(options);
  // A write after the reply may land a moment later: give it a few tries, bounded.
  let second = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    second = await cacheHeader(options);
    if (second === "HIT") break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (second !== "HIT") return { ok: false, reason: `first request ${first}, repeat ${second}, no HIT` };
  const wrk = await runWrk({ ...options, connections: 1, threads: 1 });
  const after = await cacheHeader(options);
  if (after !== "HIT") return { ok: false, reason: `after the run the repeat answered ${after}` };
  if (wrk.non2xx > 0 || wrk.socketErrors > 0) {
    return { ok: false, reason: `${wrk.non2xx} non-2xx answers and ${wrk.socketErrors} socket errors` };
  }
  return { ok: true, wrk };
}
