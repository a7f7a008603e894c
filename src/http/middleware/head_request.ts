/**
 * HEAD requests on Hono's routes. Hono serves a HEAD by its GET route and sends the answer's head only: it builds
 * `new Response(null, answer)`, for which Deno's engine writes `content-length: 0` unless the head names a length.
 * Here, once the route has answered:
 *
 * - an answer of known length (an upstream's `content-length`) keeps it, and its body is cancelled: a body
 *   streamed from an upstream (a file's content, a stored response) that was never read nor cancelled kept its
 *   attempt in flight and its upstream connection open, one per HEAD;
 * - any other answer but an event stream is read, up to `MAX_MEASURED` bytes, and its head gets the length the
 *   GET would have sent (the proxy's own JSON and pages: `/health`, `/v1/models`, `/stats`);
 * - an event stream, or a body longer than that, is cancelled unread: its HEAD still says `content-length: 0`
 *   (README, "Limits against hostile clients and upstreams").
 *
 * Only HEAD requests take any of this; the method check is all other requests pay.
 */

import type { MiddlewareHandler } from "hono";

/** The most of an answer read to learn its length for a HEAD. */
export const MAX_MEASURED = 1024 * 1024;

export const headRequest: MiddlewareHandler = async (c, next) => {
  if (c.req.method !== "HEAD") return next();
  await next();
  const answer = c.res;
  const body = answer.body;
  if (!body) return;
  const measurable = !answer.headers.has("content-length") &&
    !answer.headers.get("content-type")?.startsWith("text/event-stream");
  const length = measurable ? await lengthOf(body, MAX_MEASURED) : undefined;
  if (length === undefined) {
    await body.cancel().catch(() => {});
    return;
  }
  const headers = new Headers(answer.headers);
  headers.set("content-length", String(length));
  c.res = new Response(null, { status: answer.status, statusText: answer.statusText, headers });
};

/** The bytes of `body` once it ended, or undefined past `max` (then it is cancelled) or when it failed. */
async function lengthOf(body: ReadableStream<Uint8Array>, max: number): Promise<number | undefined> {
  const reader = body.getReader();
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return length;
      length += value.byteLength;
      if (length > max) {
        await reader.cancel().catch(() => {});
        return undefined;
      }
    }
  } catch {
    return undefined;
  } finally {
    reader.releaseLock();
  }
}
