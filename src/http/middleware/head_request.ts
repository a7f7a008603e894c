/**
 * HEAD requests on Hono's routes. Hono serves a HEAD by its GET route and sends the answer's head only, dropping
 * the body without cancelling it: a body streamed from an upstream (a file's content, a stored response) was then
 * never read nor cancelled, so its attempt stayed in flight and its upstream connection stayed open for as long as
 * the upstream kept it, one per HEAD. Here the body of a HEAD's answer is cancelled once the route has answered,
 * which ends the attempt and lets the upstream connection go.
 */

import type { MiddlewareHandler } from "hono";

export const headRequest: MiddlewareHandler = async (c, next) => {
  if (c.req.method !== "HEAD") return next();
  await next();
  await c.res.body?.cancel().catch(() => {});
};
