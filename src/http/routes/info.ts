/** Read-only views: `/v1/models`, `/health`, `/stats`. */

import type { Context } from "hono";
import type { Services } from "../../services.ts";
import type { AppEnv } from "./generation.ts";

export function modelsHandler(services: Services) {
  const created = Math.floor(services.stats.startedAt / 1000);
  const body = JSON.stringify({
    object: "list",
    data: services.config.groups.map((group) => ({
      id: group.name,
      object: "model",
      created,
      owned_by: "llmproxy",
    })),
  });
  return (c: Context<AppEnv>) => c.body(body, 200, { "content-type": "application/json" });
}

export function healthHandler(services: Services) {
  return async (c: Context<AppEnv>) => {
    const now = services.clock.now();
    const storeStatus = services.store.status();
    const groups: Record<string, { healthy: number; total: number }> = {};
    let usable = 0;
    let groupsWithout = 0;
    for (const group of services.config.groups) {
      const states = await services.health.snapshot(group.endpoints);
      const healthy = states.filter((state) => state.cooldownUntil <= now).length;
      groups[group.name] = { healthy, total: group.endpoints.length };
      if (healthy > 0) usable++;
      else groupsWithout++;
    }
    const status = usable === 0 ? "unavailable" : storeStatus !== "ok" || groupsWithout > 0 ? "degraded" : "ok";
    return c.json(
      { status, store: { kind: services.store.kind, status: storeStatus }, model_groups: groups },
      status === "unavailable" ? 503 : 200,
    );
  };
}

export function statsHandler(services: Services) {
  return async (c: Context<AppEnv>) => {
    const now = services.clock.now();
    const endpoints: Record<string, unknown>[] = [];
    for (const group of services.config.groups) {
      const states = await services.health.snapshot(group.endpoints);
      group.endpoints.forEach((endpoint, i) => {
        const state = states[i];
        const counters = services.stats.endpoint(endpoint.id);
        const cooling = state.cooldownUntil > now;
        endpoints.push({
          id: endpoint.id,
          group: group.name,
          model: endpoint.model,
          provider: endpoint.provider,
          base_url_host: new URL(endpoint.baseUrl).host,
          weight: endpoint.weight,
          state: cooling ? "cooling_down" : "available",
          cooldown_reason: cooling ? state.reason : null,
          consecutive_failures: state.failures,
          cooldown_until: cooling ? new Date(state.cooldownUntil).toISOString() : null,
          requests: counters.requests,
          successes: counters.successes,
          failures: counters.failures,
          mean_latency_ms: counters.latencyCount > 0
            ? Math.round((counters.latencyTotalMs / counters.latencyCount) * 10) / 10
            : null,
        });
      });
    }
    return c.json({
      uptime_seconds: Math.round((Date.now() - services.stats.startedAt) / 1000),
      store: { kind: services.store.kind, status: services.store.status() },
      endpoints,
    });
  };
}
