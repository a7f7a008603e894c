/**
 * Pure health transitions for one endpoint. The memory store applies them directly; the Redis store's Lua scripts
 * (`redis.ts`) mirror them line for line, so both stores agree on every sequence of events.
 *
 * Rules:
 * - A failure adds one to the consecutive count. When the count reaches `allowedFails` the endpoint cools down
 *   (as `applyCooldown` with reason "failures") and the count starts again at 0.
 * - A cooldown only ever moves the deadline later: a later `until` replaces the deadline and the reason, an earlier
 *   or equal one keeps both. Either way the failure count starts again at 0 ("failures since the last cooldown").
 * - A success resets the count and leaves a running cooldown alone.
 *
 * Functions return the input object itself when nothing changes, so callers can skip writes.
 */

import type { CooldownReason, EndpointHealth } from "./store.ts";

/** `until`: the epoch ms the cooldown this failure may start lasts until (the store's now plus `cooldownMs`). */
export function applyFailure(state: EndpointHealth, allowedFails: number, until: number): EndpointHealth {
  const failures = state.failures + 1;
  if (failures >= allowedFails) return applyCooldown(state, until, "failures");
  return { failures, cooldownUntil: state.cooldownUntil, reason: state.reason };
}

export function applyCooldown(state: EndpointHealth, until: number, reason: CooldownReason): EndpointHealth {
  if (until > state.cooldownUntil) return { failures: 0, cooldownUntil: until, reason };
  if (state.failures === 0) return state;
  return { failures: 0, cooldownUntil: state.cooldownUntil, reason: state.reason };
}

export function applySuccess(state: EndpointHealth): EndpointHealth {
  if (state.failures === 0) return state;
  return { failures: 0, cooldownUntil: state.cooldownUntil, reason: state.reason };
}
