/**
 * Bounds the request body bytes held across all requests in flight (`general_settings.max_inflight_body_bytes`).
 * Each request reserves its declared `content-length` (a body of unknown length: `max_body_bytes`, the most it may
 * be) before anything reads it, and gives it back when its handler is done. A request that does not fit gets 503
 * with `Retry-After` without its body being read, so forty clients sending 9 MiB at once cost memory for the few
 * that fit, not for all of them.
 */

import type { Env } from "hono";
import { headersOf, type Middleware } from "../request_context.ts";
import { ProxyError } from "../../errors.ts";

export interface InflightBodiesOptions {
  /** Bytes of request bodies held at once. */
  readonly maxBytes: number;
  /** The largest body accepted at all (a larger declared one is left to the 413 of the body reader). */
  readonly maxBodyBytes: number;
  /** Default 1. */
  readonly retryAfterSeconds?: number;
}

export function inflightBodies<E extends Env = Env>(options: InflightBodiesOptions): Middleware<E> {
  const { maxBytes, maxBodyBytes } = options;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  let held = 0;
  const refuse = async (body: ReadableStream | null, size: number): Promise<never> => {
    await body?.cancel().catch(() => {});
    throw new ProxyError(
      503,
      "service_unavailable",
      "server_busy",
      `The proxy is holding ${held} bytes of request bodies, and this one (${size} bytes) would pass the limit ` +
        `of ${maxBytes} (general_settings.max_inflight_body_bytes); retry shortly`,
      { headers: { "retry-after": retryAfter } },
    );
  };
  // Not async: a request holds two callbacks while it waits, not a frame.
  return (c, next) => {
    const headers = headersOf(c);
    const declared = headers.get("content-length");
    // No length: chunked (or nothing); reserved at the most it may grow to. `request.body` is not touched here:
    // that would cost the runtime's fast path for bodies that arrived whole.
    // get(), not has(): has() builds the header list's lower-cased names, which stay on the request (header_pairs.ts).
    const chunked = headers.get("transfer-encoding") !== null;
    let size = declared !== null ? Number(declared) : chunked ? maxBodyBytes : 0;
    if (!Number.isFinite(size) || size < 0) size = maxBodyBytes;
    // Declared over the size limit: the body reader answers 413 without reading it, whatever the load.
    if (size === 0 || size > maxBodyBytes) return next();
    if (held + size > maxBytes) return refuse(c.req.raw.body, size);
    held += size;
    let answered: Promise<void>;
    try {
      answered = next();
    } catch (error) {
      held -= size;
      throw error;
    }
    return answered.then(() => {
      held -= size;
    }, (error) => {
      held -= size;
      throw error;
    });
  };
}
