/** What `/stats` and `/metrics` show of routing: each endpoint's tier, in-flight count and latency average. */

import type { GroupConfig } from "../config/config.ts";
import type { EndpointLoad } from "./load.ts";
import { tierNumbers } from "./tiers.ts";

export interface EndpointRouting {
  readonly group: string;
  readonly endpoint: string;
  /** 1 for the preferred tier of its group. */
  readonly tier: number;
  /** Attempts this instance has in flight on the endpoint. */
  readonly inFlight: number;
  /** Average time to first byte in ms; undefined before the endpoint's first answer. */
  readonly latencyMs: number | undefined;
}

export function routingView(groups: readonly GroupConfig[], load: EndpointLoad): EndpointRouting[] {
  return groups.flatMap((group) => {
    const tiers = tierNumbers(group);
    return group.endpoints.map((endpoint) => ({
      group: group.name,
      endpoint: endpoint.id,
      tier: tiers.get(endpoint.id) ?? 1,
      inFlight: load.inFlight(endpoint.id),
      latencyMs: load.latencyMs(endpoint.id),
    }));
  });
}
