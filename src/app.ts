/**
 * The Hono app: routes and middleware only, no I/O of its own. Every route is served with and without `/v1`.
 */

import { Hono } from "hono";
import { ClientGone, errorResponse, notFoundRoute, toProxyError } from "./errors.ts";
import { type DirectErrorHandler, type DirectRoute, directRoutes, type Fetch } from "./http/direct_routes.ts";
import type { Middleware } from "./http/request_context.ts";
import { auth } from "./http/middleware/auth.ts";
import { headerLimit } from "./http/middleware/header_limit.ts";
import { inflightBodies } from "./http/middleware/inflight_bodies.ts";
import { observe } from "./http/middleware/observe.ts";
import { sequence } from "./http/middleware/sequence.ts";
import { tracing } from "./http/middleware/tracing.ts";
import {
  createKeyHandler,
  deleteKeyHandler,
  listKeysHandler,
  patchKeyHandler,
  usageHandler,
} from "./http/routes/admin_keys.ts";
import { clearCacheHandler } from "./http/routes/cache.ts";
import { type AppEnv, generationHandler } from "./http/routes/generation.ts";
import { healthHandler, modelsHandler, statsHandler } from "./http/routes/info.ts";
import { metricsHandler } from "./http/routes/metrics.ts";
import { responseItemHandler } from "./http/routes/responses.ts";
import { uiAssetHandler, uiDataHandler, uiPageHandler } from "./http/routes/ui.ts";
import { servedRoutes, surfaceRoutes } from "./http/routes/surface.ts";
import { pythonHeaders } from "./http/python_markers.ts";
import type { Logger } from "./logger.ts";
import type { Services } from "./services.ts";

/** The routes served before Hono's router (direct_routes.ts), under `/v1` and without it. */
const GENERATION_ROUTES = [["chat/completions", "chat"], ["responses", "responses"], [
  "embeddings",
  "embeddings",
]] as const;

/** The app: what `Deno.serve` calls. */
export interface App {
  readonly fetch: Fetch;
}

export function createApp(services: Services): App {
  const app = new Hono<AppEnv>();
  const { logger } = services;

  const around: Middleware<AppEnv>[] = [observe<AppEnv>({ metrics: services.metrics, logger })];
  if (services.telemetry) around.push(tracing(services.telemetry));
  const { maxBodyBytes, limits } = services.config.settings;
  // Checks before the route, as one of Hono's steps (see sequence.ts). Auth always: even with no key configured,
  // `/admin/*` must answer 401.
  const checks: Middleware<AppEnv> = sequence(
    headerLimit(),
    auth({ registry: services.keys, now: services.clock.now }),
    inflightBodies({ maxBytes: limits.maxInflightBodyBytes, maxBodyBytes }),
  );
  for (const middleware of [...around, checks]) app.use(middleware);

  // The generation routes are also served past Hono's chain (direct_routes.ts).
  const generation = new Map<string, DirectRoute<AppEnv>>();
  for (const prefix of ["/v1", ""]) {
    for (const [path, route] of GENERATION_ROUTES) {
      const handler = generationHandler(services, route);
      generation.set(`${prefix}/${path}`, handler);
      app.post(`${prefix}/${path}`, handler);
    }
    app.get(`${prefix}/models`, modelsHandler(services));
    app.get(`${prefix}/responses/:id`, responseItemHandler(services, "GET"));
    app.delete(`${prefix}/responses/:id`, responseItemHandler(services, "DELETE"));
    app.get(`${prefix}/responses/:id/input_items`, responseItemHandler(services, "GET", "/input_items"));
    app.post(`${prefix}/responses/:id/cancel`, responseItemHandler(services, "POST", "/cancel"));
    surfaceRoutes(app, services, prefix);
  }
  app.get("/health", healthHandler(services));
  app.get("/v1/health", healthHandler(services));
  app.get("/stats", statsHandler(services));
  app.get("/v1/stats", statsHandler(services));
  app.get("/metrics", metricsHandler(services));
  app.get("/v1/metrics", metricsHandler(services));
  for (const prefix of ["", "/v1"]) {
    app.post(`${prefix}/admin/keys`, createKeyHandler(services));
    app.get(`${prefix}/admin/keys`, listKeysHandler(services));
    app.patch(`${prefix}/admin/keys/:name`, patchKeyHandler(services));
    app.delete(`${prefix}/admin/keys/:name`, deleteKeyHandler(services));
    app.get(`${prefix}/admin/usage`, usageHandler(services));
  }
  app.delete("/cache", clearCacheHandler(services));
  app.delete("/v1/cache", clearCacheHandler(services));
  // The dashboard: page and assets open, its data behind the admin key.
  app.get("/ui", uiPageHandler(services));
  app.get("/ui/assets/:name", uiAssetHandler());
  app.get("/ui/data", uiDataHandler(services));

  const served = servedRoutes(app);
  app.notFound((c) => errorResponse(notFoundRoute(c.req.method, c.req.path, served)));
  const onError = errorHandler(logger);
  app.onError(onError);
  return { fetch: directRoutes(app, { around, checks, routes: generation, onError }) };
}

/** The app's error handler: the OpenAI envelope with the request id; 5xx logged (not a client that left). */
function errorHandler(logger: Logger): DirectErrorHandler<AppEnv> {
  return (error, c) => {
    const proxyError = toProxyError(error);
    if (proxyError.status >= 500 && !(error instanceof ClientGone)) {
      logger.error("request failed", {
        request_id: c.get("requestId"),
        status: proxyError.status,
        code: proxyError.code,
        error: proxyError.cause instanceof Error ? proxyError.cause.message : proxyError.message,
      });
    }
    const headers: Record<string, string> = { "x-request-id": c.get("requestId") ?? "" };
    // A failed generation request still gets the Python LLMProxy's markers, as every generation answer does.
    const trace = c.get("trace");
    if (c.get("group") && trace) {
      Object.assign(headers, pythonHeaders(null, performance.now() - trace.startedAt));
    }
    return errorResponse(proxyError, headers);
  };
}
