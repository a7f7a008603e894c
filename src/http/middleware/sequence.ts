/**
 * Middleware that only check a request before passing it on, run as ONE Hono middleware: each calls the next
 * directly, so a request waits in one of Hono's dispatch steps instead of one per middleware (each step is an
 * async frame, a promise and a closure held for the whole request). What Hono's steps did stays true for these:
 * an error one of them throws reaches Hono's error handler (through the ones before it, which do nothing after
 * `next()` but give back what they hold), and the route's own errors are caught at the route's step as before.
 * The generation routes run the same sequence as their checks outside Hono (direct_routes.ts).
 */

import type { Env } from "hono";
import type { Middleware } from "../request_context.ts";

/** `handlers` answer by throwing or by calling `next()`, never with a Response of their own. */
export function sequence<E extends Env>(...handlers: Middleware<E>[]): Middleware<E> {
  return handlers.reduceRight((inner, outer) => (c, next) => outer(c, () => inner(c, next) as Promise<void>));
}
