/**
 * The error a request gets when its plan of endpoints ran out (balancer.ts): 504 when the last attempt timed out,
 * 429 when every attempt and every cooling endpoint is rate limited, else 503; with what each attempt got and how
 * long each endpoint not tried still cools, and a `retry-after` for when capacity returns.
 */

import type { EndpointConfig } from "../config/config.ts";
import { ProxyError } from "../errors.ts";
import type { EndpointHealth } from "../store/store.ts";

/** Why an attempt did not produce the answer: shown in errors, never containing URLs or keys. */
export type AttemptOutcome =
  | { readonly kind: "status"; readonly status: number }
  | { readonly kind: "timeout" }
  | { readonly kind: "malformed" }
  | { readonly kind: "connection"; readonly message: string; readonly unsent?: boolean };

export interface Exhausted {
  /** The model group's name. */
  readonly group: string;
  /** The endpoints the request could use, and their health now (out of budget counted as rate limited). */
  readonly endpoints: readonly EndpointConfig[];
  readonly health: readonly EndpointHealth[];
  readonly now: number;
  /** What each attempt got, in order. */
  readonly outcomes: readonly { readonly id: string; readonly outcome: AttemptOutcome }[];
  /** The endpoints tried. */
  readonly tried: ReadonlySet<string> | undefined;
}

export function exhaustedError({ group, endpoints, health, now, outcomes, tried }: Exhausted): ProxyError {
  const parts = outcomes.map(({ id, outcome }) => `${id}: ${describe(outcome)}`);
  const cooling = health.filter((state) => state.cooldownUntil > now);
  endpoints.forEach((endpoint, i) => {
    const state = health[i];
    if (tried?.has(endpoint.id) || state.cooldownUntil <= now) return;
    const seconds = Math.ceil((state.cooldownUntil - now) / 1000);
    const why = state.reason === "rate_limit" ? "rate limited" : "cooling down after failures";
    parts.push(`${endpoint.id}: ${why} for ${seconds}s`);
  });
  const detail = parts.length > 0 ? `: ${parts.join("; ")}` : "";
  const last = outcomes.at(-1)?.outcome;
  if (last?.kind === "timeout") {
    return new ProxyError(
      504,
      "timeout",
      "upstream_timeout",
      `Upstream timed out for model group '${group}'${detail}`,
    );
  }
  // When capacity returns: the earliest cooldown end if every endpoint is cooling, else soon (retries ran out).
  const everyCooling = endpoints.length > 0 && cooling.length === endpoints.length;
  const earliest = everyCooling ? Math.min(...cooling.map((state) => state.cooldownUntil)) : now + 1000;
  const headers = { "retry-after": String(Math.max(1, Math.ceil((earliest - now) / 1000))) };
  const allRateLimited =
    outcomes.every(({ outcome }) => outcome.kind === "status" && outcome.status === 429) &&
    cooling.every((state) => state.reason === "rate_limit") &&
    outcomes.length + cooling.length > 0;
  if (allRateLimited) {
    const message = everyCooling
      ? `Every endpoint of model group '${group}' is rate limited${detail}`
      : `Model group '${group}' is rate limited and its retries are used up${detail}`;
    return new ProxyError(429, "service_unavailable", "no_healthy_endpoint", message, { headers });
  }
  return new ProxyError(
    503,
    "service_unavailable",
    "no_healthy_endpoint",
    `No healthy endpoint for model group '${group}'${detail}`,
    { headers },
  );
}
function describe(outcome: AttemptOutcome): string {
  switch (outcome.kind) {
    case "status":
      return `HTTP ${outcome.status}`;
    case "timeout":
      return "timed out";
    case "malformed":
      return "malformed answer";
    case "connection":
      return `connection failed (${outcome.message})`;
  }
}
