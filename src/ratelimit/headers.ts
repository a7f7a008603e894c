/**
 * Pure parsing of upstream rate-limit headers. Malformed values are ignored (undefined), never thrown.
 *
 * OpenAI: `x-ratelimit-limit|remaining|reset-requests|tokens`, resets as durations (`1s`, `6m0s`, `12ms`, `59.5s`).
 * Azure: `x-ratelimit-remaining-requests|tokens`, `-1` meaning unknown. On 429s: `retry-after-ms`,
 * `x-ms-retry-after-ms`, `retry-after` (seconds or an HTTP date).
 *
 * Every wait is capped at `MAX_WAIT_MS`: a wait of 10^20 s, or a date in 2099, would cool an endpoint for ever, and
 * one past what a `Date` holds failed every request that logged or showed it (a 500 for an answer the client paid).
 */

/** The longest wait an upstream's headers can impose: one hour (a 429 then costs one more try an hour). */
export const MAX_WAIT_MS = 3_600_000;

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;

/** Parses a Go-style duration (`6m0s`, `12ms`, `59.5s`, `1h2m`) or a bare number of seconds into milliseconds. */
export function parseDuration(value: string | null | undefined): number | undefined {
  if (value == null) return undefined;
  const text = value.trim();
  if (text === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  DURATION_PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let match = DURATION_PART.exec(text); match; match = DURATION_PART.exec(text)) {
    total += Number(match[1]) * UNIT_MS[match[2]];
    consumed = DURATION_PART.lastIndex;
  }
  return consumed === text.length && consumed > 0 ? Math.round(total) : undefined;
}

/** Response headers as a `Headers` object or as a record with lower-case names (the pipeline's copy). */
export type HeaderSource = Headers | Readonly<Record<string, string>>;

function header(headers: HeaderSource, name: string): string | null {
  return headers instanceof Headers ? headers.get(name) : headers[name] ?? null;
}

function nonNegativeNumber(value: string | null | undefined): number | undefined {
  if (value == null || value.trim() === "") return undefined;
  const number = Number(value);
  return Number.isFinite(number) && number >= 0 ? number : undefined;
}

/** A wait in milliseconds from a number of `unitMs` (too large for a double: the cap), or undefined. */
function waitOf(value: string | null, unitMs: number): number | undefined {
  if (value == null || value.trim() === "") return undefined;
  const number = Number(value);
  return number >= 0 ? Math.min(MAX_WAIT_MS, Math.round(number * unitMs)) : undefined;
}

/**
 * Milliseconds the upstream asks us to wait, from `retry-after-ms`, `x-ms-retry-after-ms` or `retry-after`
 * (delta seconds or an HTTP date, relative to `now`). Undefined when absent or malformed.
 */
export function parseRetryAfter(headers: HeaderSource, now: number): number | undefined {
  const ms = waitOf(header(headers, "retry-after-ms"), 1) ??
    waitOf(header(headers, "x-ms-retry-after-ms"), 1);
  if (ms !== undefined) return ms;
  const value = header(headers, "retry-after");
  if (value == null) return undefined;
  const seconds = waitOf(value, 1000);
  if (seconds !== undefined) return seconds;
  if (!/[a-z]/i.test(value)) return undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.min(MAX_WAIT_MS, Math.max(0, date - now));
}

export interface RateLimitSnapshot {
  readonly limitRequests?: number;
  readonly remainingRequests?: number;
  /** Epoch ms when the request budget resets. */
  readonly resetRequestsAt?: number;
  readonly limitTokens?: number;
  readonly remainingTokens?: number;
  /** Epoch ms when the token budget resets. */
  readonly resetTokensAt?: number;
}

/** Reads the `x-ratelimit-*` headers of any answer; fields absent, malformed or `-1` are left out. */
export function parseRateLimitHeaders(headers: HeaderSource, now: number): RateLimitSnapshot {
  const snapshot: {
    -readonly [K in keyof RateLimitSnapshot]: RateLimitSnapshot[K];
  } = {};
  const limitRequests = nonNegativeNumber(header(headers, "x-ratelimit-limit-requests"));
  const remainingRequests = nonNegativeNumber(header(headers, "x-ratelimit-remaining-requests"));
  const resetRequests = parseDuration(header(headers, "x-ratelimit-reset-requests"));
  const limitTokens = nonNegativeNumber(header(headers, "x-ratelimit-limit-tokens"));
  const remainingTokens = nonNegativeNumber(header(headers, "x-ratelimit-remaining-tokens"));
  const resetTokens = parseDuration(header(headers, "x-ratelimit-reset-tokens"));
  if (limitRequests !== undefined) snapshot.limitRequests = limitRequests;
  if (remainingRequests !== undefined) snapshot.remainingRequests = remainingRequests;
  if (resetRequests !== undefined) snapshot.resetRequestsAt = now + Math.min(MAX_WAIT_MS, resetRequests);
  if (limitTokens !== undefined) snapshot.limitTokens = limitTokens;
  if (remainingTokens !== undefined) snapshot.remainingTokens = remainingTokens;
  if (resetTokens !== undefined) snapshot.resetTokensAt = now + Math.min(MAX_WAIT_MS, resetTokens);
  return snapshot;
}

/**
 * When the snapshot says the endpoint has nothing left, the epoch ms until which it should be skipped.
 * Undefined when it has capacity or when the headers do not say when it comes back.
 */
export function exhaustedUntil(snapshot: RateLimitSnapshot): number | undefined {
  let until: number | undefined;
  if (snapshot.remainingRequests === 0 && snapshot.resetRequestsAt !== undefined) {
    until = snapshot.resetRequestsAt;
  }
  if (snapshot.remainingTokens === 0 && snapshot.resetTokensAt !== undefined) {
    until = Math.max(until ?? 0, snapshot.resetTokensAt);
  }
  return until;
}
