/**
 * Every route beyond the generation routes, on Hono's router: models, Responses items, files and batches, audio,
 * images, moderations, realtime, health, stats, metrics, the admin API, the cache and the dashboard. Hono also
 * keeps the generation routes (for its 405 answers, its route list and a path the direct routes do not take as
 * written, e.g. one with a percent-escape).
 *
 * Imported by `app.ts` at the first request that is not a POST to a generation path: Hono and these routes' code
 * stay off the start path of a proxy that only serves generation requests (issue 22.4a, idle RSS).
 */

import { Hono } from "hono";
import { errorResponse, notFoundRoute } from "../errors.ts";
import type { Services } from "../services.ts";
import type { DirectErrorHandler, DirectRoute, Fetch } from "./direct_routes.ts";
import type { Middleware } from "./request_context.ts";
import {
  createKeyHandler,
  deleteKeyHandler,
  listKeysHandler,
  patchKeyHandler,
  usageHandler,
} from "./routes/admin_keys.ts";
import { headRequest } from "./middleware/head_request.ts";
import { clearCacheHandler } from "./routes/cache.ts";
import type { AppEnv } from "./routes/generation.ts";
import { healthHandler, modelsHandler, statsHandler } from "./routes/info.ts";
import { metricsHandler } from "./routes/metrics.ts";
import { responseItemHandler } from "./routes/responses.ts";
import { uiAssetHandler, uiDataHandler, uiPageHandler } from "./routes/ui.ts";
import { servedRoutes, surfaceRoutes } from "./routes/surface.ts";

/** What `app.ts` built before Hono is needed, shared with its direct routes. */
export interface RouteParts {
  /** The middleware run around every route, outermost first, then the checks. */
  readonly middleware: readonly Middleware<AppEnv>[];
  /** The generation routes by path, `/v1` ones first, in the order they are served under each prefix. */
  readonly generation: ReadonlyMap<string, DirectRoute<AppEnv>>;
  readonly onError: DirectErrorHandler<AppEnv>;
}

/** Hono's app for `services`: what serves every request the direct routes do not. */
export function routesApp(services: Services, parts: RouteParts): Fetch {
  const app = new Hono<AppEnv>();
  app.use(headRequest);
  for (const middleware of parts.middleware) app.use(middleware);
  for (const prefix of ["/v1", ""]) {
    for (const [path, handler] of parts.generation) {
      if (path.startsWith("/v1/") === (prefix === "/v1")) app.post(path, handler);
    }
    app.get(`${prefix}/models`, modelsHandler(services));
    app.get(`${prefix}/models/:model{.+}`, modelsHandler(services));
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
  app.onError(parts.onError);
  return (request, info) => app.fetch(request, info);
}
