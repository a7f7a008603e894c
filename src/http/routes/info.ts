/** Read-only views: `/v1/models`, `/health`, `/stats`. */

import type { Context } from "hono";
import { ModelNames } from "../../balancer/model_names.ts";
import { tierNumbers } from "../../balancer/tiers.ts";
import type { BudgetUse } from "../../ratelimit/budget.ts";
import type { ObservedLimits } from "../../ratelimit/upstream_limits.ts";
import { echoed, ProxyError } from "../../errors.ts";
import { QuickHealthView } from "../../health/quick_view.ts";
import type { Services } from "../../services.ts";
import type { AppEnv } from "./generation.ts";
import { pythonHealth, pythonStats } from "./python_info.ts";
import { isoTime } from "../../util/iso_time.ts";

export function modelsHandler(services: Services) {
  const created = Math.floor(services.stats.startedAt / 1000);
  const model = (id: string) => ({ id, object: "model", created, owned_by: "llmproxy" });
  const list = (names: readonly string[]) => JSON.stringify({ object: "list", data: names.map(model) });
  const models = new ModelNames(services.config.groups);
  const names = models.listed();
  const body = list(names);
  return (c: Context<AppEnv>) => {
    // A key limited to some groups sees only those (and their listed aliases).
    const key = c.get("key");
    const id = c.req.param("model");
    if (id !== undefined) {
      // `models.retrieve`: a group or any alias of one the key may use, else OpenAI's 404 for a model.
      const group = models.resolve(id);
      if (group && (!key || key.allows(group.name))) return c.json(model(id));
      throw new ProxyError(
        404,
        "invalid_request_error",
        "model_not_found",
        `The model '${echoed(id)}' does not exist here: it is not a configured model group or alias`,
        { param: "model" },
      );
    }
    const own = key && !key.models.includes("*")
      ? list(names.filter((name) => key.allows(models.resolve(name)?.name ?? name)))
      : body;
    return c.body(own, 200, { "content-type": "application/json" });
  };
}

export function healthHandler(services: Services) {
  // Never waits on Redis for more than a few tens of ms (src/health/quick_view.ts).
  const view = new QuickHealthView(services.health, services.config.groups.map((group) => group.endpoints));
  return async (c: Context<AppEnv>) => {
    if (c.req.query("format") === "python") return c.json(await pythonHealth(services, view));
    const now = services.clock.now();
    const groups: Record<string, { healthy: number; total: number }> = {};
    let usable = 0;
    let groupsWithout = 0;
    const snapshots = await view.read();
    const storeStatus = services.store.status();
    for (const [g, group] of services.config.groups.entries()) {
      const states = snapshots[g];
      const healthy = states.filter((state) => state.cooldownUntil <= now).length;
      groups[group.name] = { healthy, total: group.endpoints.length };
      if (healthy > 0) usable++;
      else groupsWithout++;
    }
    const status = usable === 0
      ? "unavailable"
      : storeStatus !== "ok" || groupsWithout > 0
      ? "degraded"
      : "ok";
    return c.json(
      { status, store: storeView(services, storeStatus), model_groups: groups },
      status === "unavailable" ? 503 : 200,
    );
  };
}

export function statsHandler(services: Services) {
  return async (c: Context<AppEnv>) => {
    if (c.req.query("format") === "python") return c.json(await pythonStats(services));
    const now = services.clock.now();
    const endpoints: Record<string, unknown>[] = [];
    for (const group of services.config.groups) {
      const states = await services.health.snapshot(group.endpoints);
      const budgets = await Promise.all(
        group.endpoints.map((endpoint) => services.budgets.use(endpoint).catch(() => undefined)),
      );
      const tiers = tierNumbers(group);
      group.endpoints.forEach((endpoint, i) => {
        const state = states[i];
        const load = services.balancer.load.view(endpoint.id);
        const counters = services.stats.endpoint(endpoint.id);
        const cooling = state.cooldownUntil > now;
        endpoints.push({
          id: endpoint.id,
          group: group.name,
          model: endpoint.model,
          provider: endpoint.provider,
          base_url_host: new URL(endpoint.baseUrl).host,
          weight: endpoint.weight,
          priority: endpoint.priority ?? 0,
          tier: tiers.get(endpoint.id) ?? 1,
          in_flight: load.inFlight,
          ttfb_average_ms: load.latencyMs === undefined ? null : Math.round(load.latencyMs * 10) / 10,
          state: cooling ? "cooling_down" : "available",
          cooldown_reason: cooling ? state.reason : null,
          consecutive_failures: state.failures,
          cooldown_until: cooling ? isoTime(state.cooldownUntil) : null,
          requests: counters.requests,
          successes: counters.successes,
          failures: counters.failures,
          mean_latency_ms: counters.latencyCount > 0
            ? Math.round((counters.latencyTotalMs / counters.latencyCount) * 10) / 10
            : null,
          rate_limit: rateLimitView(services.limits.last(endpoint.id)),
          budget: budgetView(budgets[i], services.budgets.windowMs),
        });
      });
    }
    return c.json({
      uptime_seconds: Math.round((Date.now() - services.stats.startedAt) / 1000),
      store: { kind: services.store.kind, status: services.store.status() },
      endpoints,
      cache: await services.cache.figures(),
      realtime: { open_sessions: services.realtime.open, sessions: services.realtime.opened },
      usage_today: await services.usage.today().catch(() => null),
    });
  };
}

/** The store as `/health` shows it; with Redis, the nodes served locally now (`host:port`). */
function storeView(services: Services, status: string) {
  const { store } = services;
  return store.nodesDown
    ? { kind: store.kind, status, nodes_down: store.nodesDown() }
    : { kind: store.kind, status };
}

const iso = (ms: number | undefined) => ms === undefined ? null : isoTime(ms);

/** The last `x-ratelimit-*` figures this instance saw from the endpoint; null before any. */
function rateLimitView(limits: ObservedLimits | undefined): Record<string, unknown> | null {
  if (!limits) return null;
  return {
    limit_requests: limits.limitRequests ?? null,
    remaining_requests: limits.remainingRequests ?? null,
    reset_requests_at: iso(limits.resetRequestsAt),
    limit_tokens: limits.limitTokens ?? null,
    remaining_tokens: limits.remainingTokens ?? null,
    reset_tokens_at: iso(limits.resetTokensAt),
    observed_at: iso(limits.observedAt),
  };
}

/** Use of the configured rpm/tpm budget in the current window (shared by all instances); null without one. */
function budgetView(use: BudgetUse | undefined, windowMs: number): Record<string, unknown> | null {
  if (!use) return null;
  return {
    window_seconds: windowMs / 1000,
    window_ends_at: iso(use.windowEndsAt),
    rpm: use.rpm ?? null,
    tpm: use.tpm ?? null,
  };
}
