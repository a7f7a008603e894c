/**
 * The choice inside one tier, per the group's `routing`: `weighted` (smooth weighted round-robin), `least_busy`
 * (fewest attempts in flight, ties shared by weight) or `latency` (lowest average time to first byte, with a small
 * share of requests probing the others so a recovered endpoint is noticed). Pure apart from the rotation's state.
 */

import type { EndpointConfig, RoutingStrategy } from "../config/config.ts";
import type { EndpointLoad } from "./load.ts";
import type { SmoothWeighted } from "./weighted.ts";

/** Share of `latency` choices sent to an endpoint other than the quickest (the issue allows at most 3%). */
export const LATENCY_PROBE_SHARE = 0.02;

export interface ChoiceContext {
  readonly strategy: RoutingStrategy;
  readonly rotation: SmoothWeighted;
  readonly load: EndpointLoad;
  /** A number in [0, 1): `Math.random` outside tests. */
  readonly random: () => number;
}

/** Picks one of `tier` (non-empty: the endpoints of the best tier that can serve now). */
export function chooseInTier<T extends { readonly endpoint: EndpointConfig }>(
  tier: readonly T[],
  context: ChoiceContext,
): T {
  if (tier.length === 1) return tier[0];
  switch (context.strategy) {
    case "least_busy":
      return byWeight(lowest(tier, (id) => context.load.inFlight(id)), context.rotation);
    case "latency":
      return byLatency(tier, context);
    default:
      return byWeight(tier, context.rotation);
  }
}

function byLatency<T extends { readonly endpoint: EndpointConfig }>(
  tier: readonly T[],
  context: ChoiceContext,
): T {
  // An endpoint not measured yet counts as the quickest, so it gets its first sample at once; while that first
  // attempt is out it counts as the slowest, so a burst does not pile onto an endpoint of unknown speed.
  const { load } = context;
  const quickest = lowest(tier, (id) => load.latencyMs(id) ?? (load.inFlight(id) === 0 ? -1 : Infinity));
  if (quickest.length < tier.length && context.random() < LATENCY_PROBE_SHARE) {
    const others = tier.filter((candidate) => !quickest.includes(candidate));
    return others[Math.floor(context.random() * others.length)];
  }
  return byWeight(quickest, context.rotation);
}

/** The candidates sharing the lowest score. */
function lowest<T extends { readonly endpoint: EndpointConfig }>(
  tier: readonly T[],
  score: (id: string) => number,
): T[] {
  let best: T[] = [];
  let bestScore = Infinity;
  for (const candidate of tier) {
    const value = score(candidate.endpoint.id);
    if (value < bestScore || best.length === 0) {
      bestScore = value;
      best = [candidate];
    } else if (value === bestScore) best.push(candidate);
  }
  return best;
}

function byWeight<T extends { readonly endpoint: EndpointConfig }>(
  candidates: readonly T[],
  rotation: SmoothWeighted,
): T {
  if (candidates.length === 1) return candidates[0];
  return rotation.pick(
    candidates.map((candidate) => ({
      id: candidate.endpoint.id,
      weight: candidate.endpoint.weight || 1,
      candidate,
    })),
  )!.candidate;
}
