/**
 * What the generation routes read of a request `Deno.serve` (or the proxy's own server) handed them, read from the
 * runtime's side of the request where that costs less than the `Request` API.
 *
 * The headers. `request.headers` makes a `Headers` object over the runtime's list, each `get` a runtime call, and
 * a request whose `Headers` was made has its whole list built once more when its handler returns (so that it stays
 * readable after the request is closed). The header limit and the forwarded headers each built the list again
 * (header_pairs.ts). Here the list is built once per request and every reader looks names up in it (`PairHeaders`):
 * ~6.6 us less CPU per request in a trivial server reading as the proxy does (9 rounds), one list instead of three.
 *
 * The client's leaving. `request.signal` makes an `AbortSignal` per request (an `EventTarget` with its records,
 * and each listener added to it another record), and Deno asks its server to report a cancelled request only to
 * abort that signal. Here the report goes to the proxy's plain call signal (upstream/call_signal.ts) instead:
 * ~2.4 us less CPU per request served (a trivial server under wrk, 9 rounds) and no `EventTarget` per request.
 *
 * Deno 2.9 keeps the runtime's side of a served `Request` under the symbol "request" (its `InnerRequest`, whose
 * `onCancel(callback)` calls `callback` once the client has gone while the request is answered; with Deno's legacy
 * abort, also once it is answered, as `request.signal` then aborts too). Where it is not there (another runtime, a
 * `Request` made in process), `request.signal` is used as before. A Deno internal: re-check on a Deno upgrade.
 */

import type { AbortLike } from "../core/abort_like.ts";
import { CallSignal } from "../upstream/call_signal.ts";
import { type HeaderPair, headerPairs, PairHeaders } from "./header_pairs.ts";

interface InnerRequest {
  onCancel?: unknown;
  readonly headerList?: unknown;
}

let innerSlot: symbol | null | undefined;

/** The runtime's side of a served request, found once by its symbol's name; undefined when there is none. */
function innerOf(request: Request): InnerRequest | undefined {
  if (innerSlot === undefined) {
    innerSlot = Object.getOwnPropertySymbols(request).find((symbol) => symbol.description === "request") ??
      null;
  }
  if (innerSlot === null) return undefined;
  const inner = (request as unknown as Record<symbol, InnerRequest | null | undefined>)[innerSlot];
  return inner ?? undefined;
}

/**
 * The reason of every such abort, made once (Deno 2.9 makes one per cancelled request for `request.signal`; the
 * proxy never changes a reason, so one can be shared): under the legacy abort the callback runs after every answer,
 * and an error made per request would capture a stack each time.
 */
const CLIENT_LEFT = new DOMException("The client closed the request", "AbortError");

/** Aborted when the client leaves before its answer is sent (with an `AbortError`, as `request.signal`). */
export function clientSignal(request: Request): AbortLike {
  const inner = innerOf(request);
  if (typeof inner?.onCancel !== "function") return request.signal;
  const signal = new CallSignal();
  (inner.onCancel as (callback: () => void) => void).call(inner, () => signal.abort(CLIENT_LEFT));
  return signal;
}

/** The request's headers, its list built once (from the runtime's side where there is one). */
export function servedHeaders(request: Request): PairHeaders {
  const list = innerOf(request)?.headerList;
  return new PairHeaders(Array.isArray(list) ? list as HeaderPair[] : headerPairs(request.headers));
}
