/**
 * Priority tiers, pure. An endpoint with a weight belongs to the tier of its `priority` (lower first); weight-0
 * endpoints come after every tier, one at a time (by priority, then file order). A group made only of weight-0
 * endpoints serves from them as equals, tiered by priority.
 */

import type { EndpointConfig, GroupConfig } from "../config/config.ts";

/** The best tier among `candidates` (all of them able to serve now): those the request should choose among. */
export function bestTier<T extends { readonly endpoint: EndpointConfig }>(
  candidates: readonly T[],
  allFallbacks: boolean,
): T[] {
  let best: T[] = [];
  let bestPriority = Infinity;
  let fallback: T | undefined;
  for (const candidate of candidates) {
    const { endpoint } = candidate;
    const priority = endpoint.priority ?? 0;
    if (endpoint.weight > 0 || allFallbacks) {
      if (priority < bestPriority) {
        bestPriority = priority;
        best = [candidate];
      } else if (priority === bestPriority) best.push(candidate);
    } else if (!fallback || priority < (fallback.endpoint.priority ?? 0)) fallback = candidate;
  }
  if (best.length > 0 || !fallback) return best;
  return [fallback];
}

/**
 * Each endpoint's tier number in its group, 1 being the preferred tier (`/stats` and `/metrics`). Weight-0
 * endpoints number after the weighted tiers, each its own.
 */
export function tierNumbers(group: GroupConfig): Map<string, number> {
  const allFallbacks = group.endpoints.every((endpoint) => endpoint.weight === 0);
  const weighted = group.endpoints.filter((endpoint) => endpoint.weight > 0 || allFallbacks);
  const priorities = [...new Set(weighted.map((endpoint) => endpoint.priority ?? 0))].sort((a, b) => a - b);
  const tiers = new Map<string, number>();
  for (const endpoint of weighted) tiers.set(endpoint.id, priorities.indexOf(endpoint.priority ?? 0) + 1);
  const fallbacks = group.endpoints
    .map((endpoint, index) => ({ endpoint, index }))
    .filter(({ endpoint }) => !tiers.has(endpoint.id))
    .sort((a, b) => (a.endpoint.priority ?? 0) - (b.endpoint.priority ?? 0) || a.index - b.index);
  fallbacks.forEach(({ endpoint }, i) => tiers.set(endpoint.id, priorities.length + i + 1));
  return tiers;
}
