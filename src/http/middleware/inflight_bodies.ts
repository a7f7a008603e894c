/**
 * Reserves the request body bytes of each request in the proxy's one pool of `max_inflight_body_bytes`
 * (`body_pool.ts`). Each request reserves its declared `content-length` before anything reads it (a body of unknown
 * length takes its bytes as they are read, `BodyHold`), and gives it back when its handler is done. A request that does
 * not fit gets 503 with `Retry-After` without its body being read, so forty clients sending 9 MiB at once cost
 * memory for the few that fit, not for all of them; one that could never fit (larger than the whole pool) gets 413.
 * The upload routes (`UPLOAD_PATHS`) are left to take what they hold themselves: most of an upload is never held.
 */

import type { Env, Next } from "hono";
import { headersOf, type Middleware } from "../request_context.ts";
import { BodyHold, type BodyPool } from "../body_pool.ts";

export interface InflightBodiesOptions {
  /** The pool the bytes are reserved in. */
  readonly pool: BodyPool;
  /** The largest body accepted at all (a larger declared one is left to the 413 of the body reader). */
  readonly maxBodyBytes: number;
  /** Paths whose POST bodies are not reserved here (the upload routes, on Hono's router); none when unset. */
  readonly uploads?: ReadonlySet<string>;
}

/** The routes whose bodies stream upstream, holding only what they take from the pool (surface/upload.ts). */
export const UPLOAD_PATHS: ReadonlySet<string> = new Set(
  ["files", "audio/transcriptions", "audio/translations", "images/edits"].flatMap((path) => [
    `/v1/${path}`,
    `/${path}`,
  ]),
);

/** What a route reads of a request's context to count a body of unknown length as it reads it. */
export type BodyHoldEnv = { Variables: { bodyHold: BodyHold | undefined } };

export function inflightBodies<E extends Env & BodyHoldEnv = Env & BodyHoldEnv>(
  options: InflightBodiesOptions,
): Middleware<E> {
  const { pool, maxBodyBytes, uploads } = options;
  const refuse = async (body: ReadableStream | null, size: number): Promise<never> => {
    await body?.cancel().catch(() => {});
    throw pool.refusal(size, "this body");
  };
  // Not async: a request holds two callbacks while it waits, not a frame.
  return (c, next) => {
    const headers = headersOf(c);
    const declared = headers.get("content-length");
    if (uploads !== undefined && c.req.method === "POST" && uploads.has(c.req.path)) return next();
    // No length: chunked (or nothing). Its bytes are taken as the body reader reads them (`BodyHold`), so a small
    // chunked body costs what it holds, not `max_body_bytes`. `request.body` is not touched here: that would cost
    // the runtime's fast path for bodies that arrived whole. get(), not has(): has() builds the header list's
    // lower-cased names, which stay on the request (header_pairs.ts).
    if (declared === null) {
      if (headers.get("transfer-encoding") === null) return next();
      const hold = new BodyHold(pool);
      c.set("bodyHold", hold);
      return settled(next, () => hold.release());
    }
    let size = Number(declared);
    if (!Number.isFinite(size) || size < 0) size = maxBodyBytes;
    // Declared over the size limit: the body reader answers 413 without reading it, whatever the load.
    if (size === 0 || size > maxBodyBytes) return next();
    if (!pool.take(size)) return refuse(c.req.raw.body, size);
    return settled(next, () => pool.give(size));
  };
}

/** Runs `next`, then `done` however it ends. */
function settled(next: Next, done: () => void): Promise<void> {
  let answered: Promise<void>;
  try {
    answered = next();
  } catch (error) {
    done();
    throw error;
  }
  return answered.then(done, (error) => {
    done();
    throw error;
  });
}
