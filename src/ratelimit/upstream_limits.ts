/**
 * What the upstreams say about their own rate limits: the `x-ratelimit-*` headers of every answer, kept per
 * endpoint as the last known figures for `/stats` (in this instance's memory: each instance shows what it saw),
 * and the verdict "nothing left until T" that the pipeline turns into a shared cooldown.
 */

import {
  exhaustedUntil,
  type HeaderSource,
  parseRateLimitHeaders,
  type RateLimitSnapshot,
} from "./headers.ts";

export interface ObservedLimits extends RateLimitSnapshot {
  /** Epoch ms of the answer that last carried rate-limit headers. */
  readonly observedAt: number;
}

export class UpstreamLimits {
  readonly #now: () => number;
  readonly #last = new Map<string, ObservedLimits>();

  constructor(now: () => number) {
    this.#now = now;
  }

  /**
   * Reads one answer's headers. Returns the epoch ms until which the endpoint has no requests or tokens left,
   * when the headers say so with a reset time; undefined otherwise (absent, malformed or Azure's `-1` values).
   */
  observe(endpointId: string, headers: HeaderSource): number | undefined {
    const now = this.#now();
    const snapshot = parseRateLimitHeaders(headers, now);
    if (isEmpty(snapshot)) return undefined;
    // Field by field: an answer that reports only requests keeps the last known token figures.
    this.#last.set(endpointId, { ...this.#last.get(endpointId), ...snapshot, observedAt: now });
    return exhaustedUntil(snapshot);
  }

  /** The last known figures of an endpoint; undefined before any answer carried rate-limit headers. */
  last(endpointId: string): ObservedLimits | undefined {
    return this.#last.get(endpointId);
  }
}

function isEmpty(snapshot: RateLimitSnapshot): boolean {
  for (const _ in snapshot) return false;
  return true;
}
