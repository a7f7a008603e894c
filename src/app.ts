/**
 * The app: the middleware, the generation routes served directly (direct_routes.ts) and, behind them, Hono's router
 * for every other route (routes_app.ts), imported at the first request that needs it. Every route is served with
 * and without `/v1`.
 */

import { ClientGone, errorResponse, ProxyError, toProxyError } from "./errors.ts";
import {
  type DirectErrorHandler,
  type DirectRoute,
  directRoutes,
  type DirectServe,
  directServe,
  type Fetch,
  requestPath,
} from "./http/direct_routes.ts";
import type { Middleware } from "./http/request_context.ts";
import { auth } from "./http/middleware/auth.ts";
import { headerLimit } from "./http/middleware/header_limit.ts";
import { inflightBodies, UPLOAD_PATHS } from "./http/middleware/inflight_bodies.ts";
import { observe } from "./http/middleware/observe.ts";
import { sequence } from "./http/middleware/sequence.ts";
import { tracing } from "./http/middleware/tracing.ts";
import { type AppEnv, generationHandler } from "./http/routes/generation.ts";
import { pythonHeaders } from "./http/python_markers.ts";
import { unsupportedCoding } from "./http/body.ts";
import type { RouteParts } from "./http/routes_app.ts";
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
  const { logger } = services;

  const around: Middleware<AppEnv>[] = [observe<AppEnv>({ metrics: services.metrics, logger })];
  if (services.telemetry) around.push(tracing(services.telemetry));
  const { maxBodyBytes } = services.config.settings;
  // Checks before the route, as one of Hono's steps (see sequence.ts). Auth always: even with no key configured,
  // `/admin/*` must answer 401. Hono's routes have the uploads, which take what they hold from the pool themselves.
  const first = [headerLimit<AppEnv>(), auth<AppEnv>({ registry: services.keys, now: services.clock.now })];
  const pool = services.bodyPool;
  const checks: Middleware<AppEnv> = sequence(...first, inflightBodies({ pool, maxBodyBytes }));
  const routeChecks = sequence(...first, inflightBodies({ pool, maxBodyBytes, uploads: UPLOAD_PATHS }));
  const generation = new Map<string, DirectRoute<AppEnv>>();
  for (const prefix of ["/v1", ""]) {
    for (const [path, route] of GENERATION_ROUTES) {
      generation.set(`${prefix}/${path}`, generationHandler(services, route));
    }
  }
  const onError = errorHandler(logger);
  const parts = { middleware: [...around, routeChecks], generation, onError };
  const rest = lazyRoutes(services, parts, directServe({ around, checks, onError }));
  return { fetch: directRoutes(rest, { around, checks, routes: generation, onError }) };
}

/**
 * Hono's router and every route beyond generation, imported and built at the first request that needs them (a
 * proxy serving only generation requests never loads them: issue 22.4a, idle RSS). An import that fails (a file
 * missing from a broken install) answers that request with the OpenAI error envelope (500, `routes_unavailable`)
 * through the same middleware as any other answer (`serve`: its request id, access-log line and series), is
 * logged the first time, and is tried again at the next such request (in vain where the runtime keeps a failed
 * import's error, as Deno 2.9 does for a missing file: the process then needs a restart).
 */
function lazyRoutes(services: Services, parts: RouteParts, serve: DirectServe<AppEnv>): Fetch {
  let routes: Fetch | undefined;
  let loading: Promise<Fetch> | undefined;
  let logged = false;
  const unavailable = (request: Request, error: unknown): Promise<Response> => {
    if (!logged) {
      logged = true;
      services.logger.error("cannot load the routes beyond generation; they answer 500 until it works", {
        error: error instanceof Error ? error.message : String(error),
      });
    }
    return serve(request, requestPath(request.url), routesUnavailable);
  };
  const load = () =>
    loading ??= import("./http/routes_app.ts").then(
      ({ routesApp }) => routes = routesApp(services, parts),
      (error) => {
        loading = undefined;
        throw error;
      },
    );
  return (request, info) =>
    routes
      ? routes(request, info)
      : load().then((fetch) => fetch(request, info), (error) => unavailable(request, error));
}

/** The route of a request whose route's code could not be imported. */
const routesUnavailable = (): Promise<Response> =>
  Promise.reject(
    new ProxyError(500, "server_error", "routes_unavailable", "The proxy could not load this route's code"),
  );

/** The app's error handler: the OpenAI envelope with the request id; 5xx logged (not a client that left). */
function errorHandler(logger: Logger): DirectErrorHandler<AppEnv> {
  return (error, c) => {
    const proxyError = unsupportedCoding(toProxyError(error), c.req.header("content-encoding"));
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
