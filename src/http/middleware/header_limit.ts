/**
 * Refuses requests whose headers add up to more than `maxBytes` (431 in the OpenAI envelope) before any route
 * reads them or forwards them upstream. Deno itself already drops a head over ~64 KiB or over ~128 header lines
 * with a bare 400; this gives a clear error below that.
 */

import type { Env } from "hono";
import { headersOf, type Middleware } from "../request_context.ts";
import { headersTooLarge } from "../../errors.ts";
import { headerPairs } from "../header_pairs.ts";

export interface HeaderLimitOptions {
  /** Default 32 KiB: names, values and separators of every header. */
  readonly maxBytes?: number;
}

export const DEFAULT_MAX_HEADER_BYTES = 32 * 1024;

export function headerLimit<E extends Env = Env>(options: HeaderLimitOptions = {}): Middleware<E> {
  const limit = options.maxBytes ?? DEFAULT_MAX_HEADER_BYTES;
  // Not async: nothing happens after `next()`, so no frame of its own waits for the request.
  return (c, next) => {
    let size = 0;
    // Not forEach or for...of: either leaves a sorted copy of the list on the request for its life (header_pairs.ts).
    // Indexed, not destructured: an iterator and its results per pair otherwise (hot code, every request).
    const pairs = headerPairs(headersOf(c));
    for (let i = 0; i < pairs.length; i++) size += pairs[i][0].length + pairs[i][1].length + 4;
    if (size > limit) throw headersTooLarge(size, limit);
    return next();
  };
}
