/**
 * `/health?format=python` and `/stats?format=python`: the shapes the Python LLMProxy answered with, so monitoring
 * built against it keeps working. Figures come from the same sources as the native views; fields this proxy does not
 * track are null. Times are UTC ISO 8601 without a zone, with microseconds, as Python's `datetime.utcnow()` writes
 * them. No key and no full URL appears (an endpoint's `base_url` is its origin).
 */

import type { EndpointConfig } from "../../config/config.ts";
import type { Services } from "../../services.ts";
import type { QuickHealthView } from "../../health/quick_view.ts";
import type { EndpointHealth } from "../../store/store.ts";
import { VERSION } from "../../version.ts";
import { isoTime } from "../../util/iso_time.ts";

/** `2026-01-02T03:04:05.678000`: Python's naive UTC `isoformat()`. */
export function pythonTime(ms: number): string {
  return `${isoTime(ms).slice(0, -1)}000`;
}

/**
 * `{status, timestamp, version, redis_connected, state_sharing_enabled, endpoints_configured, model_groups}`.
 * `status` is `healthy` when the native `/health` would say `ok` (the store answers, every group has an endpoint
 * that is not cooling down), else `degraded`; the HTTP status is always 200, as it was there.
 */
export async function pythonHealth(
  services: Services,
  view: QuickHealthView,
): Promise<Record<string, unknown>> {
  const now = services.clock.now();
  const { groups } = services.config;
  // Read as the native `/health` reads: never waiting on Redis past its budget, however many groups there are.
  const snapshots = await view.read();
  const storeOk = services.store.status() === "ok";
  const everyGroupServes = snapshots.every((states) => states.some((state) => state.cooldownUntil <= now));
  const shared = services.store.kind === "redis" && storeOk;
  return {
    status: storeOk && everyGroupServes ? "healthy" : "degraded",
    timestamp: pythonTime(Date.now()),
    version: VERSION,
    redis_connected: shared,
    state_sharing_enabled: shared,
    endpoints_configured: groups.reduce((sum, group) => sum + group.endpoints.length, 0),
    model_groups: groups.map((group) => group.name),
  };
}

/** `{timestamp, model_groups: {group: [{id, config, state}]}, total_model_groups, total_endpoints}`. */
export async function pythonStats(services: Services): Promise<Record<string, unknown>> {
  const now = services.clock.now();
  const modelGroups: Record<string, unknown[]> = {};
  let total = 0;
  for (const group of services.config.groups) {
    const states = await services.health.snapshot(group.endpoints);
    modelGroups[group.name] = group.endpoints.map((endpoint, i) => ({
      id: endpoint.id,
      config: endpointConfig(endpoint, services.config.settings.allowedFails),
      state: endpointState(services, endpoint, states[i], now),
    }));
    total += group.endpoints.length;
  }
  return {
    timestamp: pythonTime(Date.now()),
    model_groups: modelGroups,
    total_model_groups: services.config.groups.length,
    total_endpoints: total,
  };
}

function endpointConfig(endpoint: EndpointConfig, allowedFails: number) {
  return {
    id: endpoint.id,
    model: endpoint.model,
    weight: endpoint.weight,
    base_url: new URL(endpoint.baseUrl).origin,
    is_azure: endpoint.provider === "azure",
    allowed_fails: allowedFails,
  };
}

/** Traffic counters are this instance's; failures and cooldowns are the shared ones. */
function endpointState(services: Services, endpoint: EndpointConfig, health: EndpointHealth, now: number) {
  const counters = services.stats.endpoint(endpoint.id);
  const cooling = health.cooldownUntil > now;
  return {
    id: endpoint.id,
    model: endpoint.model,
    weight: endpoint.weight,
    status: cooling ? "cooling_down" : "healthy",
    base_url: new URL(endpoint.baseUrl).origin,
    is_azure: endpoint.provider === "azure",
    total_requests: counters.requests,
    failed_requests: counters.failures,
    success_rate: counters.requests > 0
      ? ((counters.requests - counters.failures) / counters.requests) * 100
      : 0,
    consecutive_failures: health.failures,
    last_error: cooling ? health.reason : null,
    last_error_time: null,
    last_success_time: null,
    cooldown_until: cooling ? pythonTime(health.cooldownUntil) : null,
  };
}
