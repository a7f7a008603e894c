/**
 * The generation routes, taken before Hono's router. Hono runs a route that shares the app's middleware through
 * `compose`: one async dispatch step per middleware and one for the route, each a frame, a promise and a closure
 * held for the whole request, around a context of sixteen closures. These routes carry nearly all the traffic, so
 * a POST to one of their paths runs the same middleware in the same order, chained here on a lighter context
 * (request_context.ts), and keeps what compose guarantees: an error thrown by a middleware or by the route is
 * rendered by the app's error handler, and set as `c.error` and `c.res`, before the middleware around it resumes
 * (the observing middleware logs and counts it as for any route). Every other request goes to Hono, which keeps
 * these routes too (for its 405 answers and its route list).
 */

import type { Env } from "hono";
import { DirectContext, type Middleware, type RequestContext } from "./request_context.ts";

/** What `Deno.serve` calls. */
export type Fetch = (
  request: Request,
  info?: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

export type DirectRoute<E extends Env> = (c: RequestContext<E>) => Promise<Response>;

export type DirectErrorHandler<E extends Env> = (
  error: Error,
  c: RequestContext<E>,
) => Response | Promise<Response>;

export interface DirectOptions<E extends Env> {
  /** Middleware that look at the answer after `next()` (observe, tracing), outermost first. */
  readonly around: readonly Middleware<E>[];
  /** Middleware that only check the request before `next()` (sequence.ts), run right around the route. */
  readonly checks: Middleware<E>;
  /** Handlers of POST requests, by path. */
  readonly routes: ReadonlyMap<string, DirectRoute<E>>;
  /** The app's error handler (its `onError`). */
  readonly onError: DirectErrorHandler<E>;
}

/** What a direct route is served through: the middleware and the error handler. */
export type DirectChain<E extends Env> = Omit<DirectOptions<E>, "routes">;

/** Serves a request by `route` through the chain's middleware; errors rendered as compose does (above). */
export type DirectServe<E extends Env> = (
  request: Request,
  path: string,
  route: DirectRoute<E>,
) => Promise<Response>;

export function directServe<E extends Env>(chain: DirectChain<E>): DirectServe<E> {
  const { around, checks, onError } = chain;
  const failed = async (c: RequestContext<E>, error: unknown): Promise<void> => {
    if (!(error instanceof Error)) throw error; // what Hono does with a thrown non-Error
    c.error = error;
    c.res = await onError(error, c);
  };
  // The middleware at `index` (past them: the checks and the route), its errors rendered before the one around it
  // resumes. Promise callbacks rather than async functions: a request holds one less frame per step.
  const step = (c: RequestContext<E>, route: DirectRoute<E>, index: number): Promise<void> => {
    const fail = (error: unknown) => failed(c, error);
    try {
      if (index < around.length) {
        return around[index](c, () => step(c, route, index + 1)).then(undefined, fail);
      }
      const answered = () => route(c).then((answer) => void (c.res = answer));
      return checks(c, answered).then(undefined, fail);
    } catch (error) {
      return fail(error);
    }
  };
  return (request, path, route) => {
    const c = new DirectContext<E>(request, path);
    return step(c, route, 0).then(() => c.res);
  };
}

/** `rest` (Hono's `app.fetch`), with a POST to one of `routes`' paths served here. */
export function directRoutes<E extends Env>(rest: Fetch, options: DirectOptions<E>): Fetch {
  const { routes } = options;
  const serve = directServe(options);
  return (request, info) => {
    if (request.method !== "POST") return rest(request, info);
    const path = requestPath(request.url);
    const route = routes.get(path);
    if (!route) return rest(request, info);
    return serve(request, path, route);
  };
}

/**
 * The path of a request's URL as Hono's router reads it (`getPath`), for a path without a percent-escape: from the
 * first `/` after the scheme and host up to a `?` or `#`. A path with one is not decoded here: it matches no direct
 * route and goes to Hono, which decodes it and serves the same route.
 */
export function requestPath(url: string): string {
  const start = url.indexOf("/", url.indexOf(":") + 4);
  let end = start;
  for (; end < url.length; end++) {
    const code = url.charCodeAt(end);
    if (code === 63 || code === 35) break; // ? #
  }
  return url.slice(start, end);
}
