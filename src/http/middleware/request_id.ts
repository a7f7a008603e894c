/** Echoes a sane client `x-request-id` or generates one; every answer carries it. */

import type { MiddlewareHandler } from "hono";

export interface RequestIdOptions {
  readonly header?: string;
  readonly generate?: () => string;
}

const SAFE_ID = /^[\w.:@-]{1,128}$/;

export function requestId(
  options: RequestIdOptions = {},
): MiddlewareHandler<{ Variables: { requestId: string } }> {
  const header = options.header ?? "x-request-id";
  const generate = options.generate ?? (() => crypto.randomUUID());
  return async (c, next) => {
    const given = c.req.header(header);
    const id = given && SAFE_ID.test(given) ? given : generate();
    c.set("requestId", id);
    await next();
    c.res.headers.set(header, id);
  };
}
