/**
 * What the `/ui` dashboard shows, read fresh on every poll from state the proxy already keeps: endpoint health
 * (shared), this instance's counters, rate limits and budgets, the rolling attempt histories and the cache figures.
 * Nothing secret: no keys, no base URLs beyond their host, no request text.
 */

import type { EndpointConfig, GroupConfig } from "../config/config.ts";
import { type EndpointHistory, SLOT_MS } from "../metrics/recent.ts";
import type { BudgetUse } from "../ratelimit/budget.ts";
import type { Services } from "../services.ts";
import type { EndpointHealth } from "../store/store.ts";
import { type KeyUsage, keyUsage } from "./key_usage.ts";

export interface EndpointView {
  readonly id: string;
  readonly model: string;
  readonly provider: string;
  readonly host: string;
  /** `tier N` (its `priority`, lower preferred) or `fallback` (weight 0: only when every tier failed). */
  readonly tier: string;
  readonly weight: number;
  readonly state: "available" | "cooling_down";
  readonly cooldown_reason: string | null;
  readonly cooldown_until: number | null;
  readonly consecutive_failures: number;
  readonly in_flight: number;
  readonly requests: number;
  readonly failures: number;
  readonly rate_limit: {
    readonly remaining_requests: number | null;
    readonly limit_requests: number | null;
    readonly remaining_tokens: number | null;
    readonly limit_tokens: number | null;
  } | null;
  readonly budget: { readonly rpm: BudgetUse["rpm"] | null; readonly tpm: BudgetUse["tpm"] | null } | null;
  readonly history: EndpointHistory;
}

export interface DashboardSnapshot {
  /** Epoch ms of this snapshot. */
  readonly now: number;
  readonly uptime_seconds: number;
  readonly store: { readonly kind: string; readonly status: string };
  /** Epoch ms of the first history slot, and the slot length. */
  readonly history_start: number;
  readonly slot_ms: number;
  readonly groups: readonly { readonly name: string; readonly endpoints: readonly EndpointView[] }[];
  readonly cache: {
    readonly enabled: boolean;
    readonly hits: number;
    readonly misses: number;
    readonly coalesced: number;
    /** Hits (and coalesced) / lookups, 0..1; null before any lookup. */
    readonly hit_ratio: number | null;
    readonly entries: number | null;
    readonly bytes: number | null;
  };
  /**
   * Today's usage (UTC) of the most used key names, all instances together (`/stats` `usage_today` has every
   * key); null when unreadable.
   */
  readonly keys: KeyUsage["top"] | null;
  /** The keys used today past those in `keys`: how many, their figures summed; null when none. */
  readonly other_keys: KeyUsage["others"];
}

export async function dashboardSnapshot(services: Services): Promise<DashboardSnapshot> {
  const now = services.clock.now();
  const groups = await Promise.all(services.config.groups.map((group) => groupView(services, group, now)));
  const [figures, keys] = await Promise.all([
    services.cache.figures(),
    services.usage.today().catch(() => null),
  ]);
  const usage = keys ? keyUsage(keys) : undefined;
  const served = figures.hits + figures.coalesced;
  const lookups = served + figures.misses;
  return {
    now,
    uptime_seconds: Math.round((Date.now() - services.stats.startedAt) / 1000),
    store: { kind: services.store.kind, status: services.store.status() },
    history_start: services.metrics.recent.firstSlotAt(),
    slot_ms: SLOT_MS,
    groups,
    cache: {
      enabled: figures.enabled,
      hits: figures.hits,
      misses: figures.misses,
      coalesced: figures.coalesced,
      hit_ratio: lookups > 0 ? Math.round((served / lookups) * 1000) / 1000 : null,
      entries: figures.entries,
      bytes: figures.bytes,
    },
    keys: usage?.top ?? null,
    other_keys: usage?.others ?? null,
  };
}

async function groupView(services: Services, group: GroupConfig, now: number) {
  const [states, budgets] = await Promise.all([
    services.health.snapshot(group.endpoints),
    Promise.all(group.endpoints.map((endpoint) => services.budgets.use(endpoint).catch(() => undefined))),
  ]);
  return {
    name: group.name,
    endpoints: group.endpoints.map((endpoint, i) =>
      endpointView(services, endpoint, states[i], budgets[i], now)
    ),
  };
}

function endpointView(
  services: Services,
  endpoint: EndpointConfig,
  health: EndpointHealth,
  budget: BudgetUse | undefined,
  now: number,
): EndpointView {
  const counters = services.stats.endpoint(endpoint.id);
  const limits = services.limits.last(endpoint.id);
  const cooling = health.cooldownUntil > now;
  return {
    id: endpoint.id,
    model: endpoint.model,
    provider: endpoint.provider,
    host: new URL(endpoint.baseUrl).host,
    tier: endpoint.weight > 0 ? `tier ${endpoint.priority ?? 0}` : "fallback",
    weight: endpoint.weight,
    state: cooling ? "cooling_down" : "available",
    cooldown_reason: cooling ? health.reason : null,
    cooldown_until: cooling ? health.cooldownUntil : null,
    consecutive_failures: health.failures,
    in_flight: services.metrics.recent.inFlight(endpoint.id),
    requests: counters.requests,
    failures: counters.failures,
    rate_limit: limits
      ? {
        remaining_requests: limits.remainingRequests ?? null,
        limit_requests: limits.limitRequests ?? null,
        remaining_tokens: limits.remainingTokens ?? null,
        limit_tokens: limits.limitTokens ?? null,
      }
      : null,
    budget: budget && (budget.rpm || budget.tpm)
      ? { rpm: budget.rpm ?? null, tpm: budget.tpm ?? null }
      : null,
    history: services.metrics.recent.history(endpoint.id),
  };
}
