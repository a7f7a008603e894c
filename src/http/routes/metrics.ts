/** `GET /metrics`: the Prometheus text format; shared state (cooldowns, store) is read at scrape time. */

import type { Context } from "hono";
import { PROMETHEUS_CONTENT_TYPE } from "../../metrics/registry.ts";
import { routingView } from "../../balancer/view.ts";
import type { Services } from "../../services.ts";
import type { AppEnv } from "./generation.ts";

export function metricsHandler(services: Services) {
  return async (c: Context<AppEnv>) => {
    const now = services.clock.now();
    const coolingDown: { group: string; endpoint: string; cooling: boolean }[] = [];
    for (const group of services.config.groups) {
      const states = await services.health.snapshot(group.endpoints);
      group.endpoints.forEach((endpoint, i) => {
        coolingDown.push({
          group: group.name,
          endpoint: endpoint.id,
          cooling: states[i].cooldownUntil > now,
        });
      });
    }
    services.metrics.routing.update(routingView(services.config.groups, services.balancer.load));
    const text = services.metrics.render({
      storeKind: services.store.kind,
      storeUp: services.store.status() === "ok",
      coolingDown,
      upstreamConnections: {
        opened: services.upstream.connectionsOpened,
        idle: services.upstream.idleConnections,
      },
    });
    // Usage per key (labelled by key name, never the key); the series of keys revoked or removed go after this.
    const usage = services.usage.metrics.render();
    return c.body(text + usage, 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
  };
}
