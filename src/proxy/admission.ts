/**
 * The admission stage: the first thing the pipeline does with a request. Each rule looks at the incoming request
 * and returns its verdict: reject (a typed `ProxyError`, rendered by the one error renderer), or admit, possibly
 * naming the caller (`Identity`, handed to every later stage and to usage recording). Rules run in order; the first
 * rejection wins, and the last identity given wins. A new admission rule (per-key limits, quotas) is one function
 * added to `PipelineDeps.admission`.
 */

import type { Admitted, Identity, IncomingRequest } from "../core/request.ts";
import type { ProxyError } from "../errors.ts";

export type AdmissionVerdict =
  | { readonly admit: true; readonly identity?: Identity }
  | { readonly admit: false; readonly error: ProxyError };

export type AdmissionRule = (request: IncomingRequest) => AdmissionVerdict | Promise<AdmissionVerdict>;

/**
 * Runs the rules: the request with its identity, or the first rejection thrown. Rules that decide at once are run
 * at once (no await per rule); from the first one that returns a promise on, the rest wait their turn.
 */
export function admit<R extends IncomingRequest>(
  rules: readonly AdmissionRule[],
  request: R,
): Admitted<R> | Promise<Admitted<R>> {
  let identity: Identity | null = null;
  for (let i = 0; i < rules.length; i++) {
    const verdict = rules[i](request);
    if (verdict instanceof Promise) return admitLater(rules, i, verdict, request, identity);
    identity = judged(verdict, identity);
  }
  return { ...request, identity };
}

async function admitLater<R extends IncomingRequest>(
  rules: readonly AdmissionRule[],
  at: number,
  pending: Promise<AdmissionVerdict>,
  request: R,
  identity: Identity | null,
): Promise<Admitted<R>> {
  identity = judged(await pending, identity);
  for (let i = at + 1; i < rules.length; i++) identity = judged(await rules[i](request), identity);
  return { ...request, identity };
}

/** The identity after one verdict: a rejection is thrown, the last identity given wins. */
function judged(verdict: AdmissionVerdict, identity: Identity | null): Identity | null {
  if (!verdict.admit) throw verdict.error;
  return verdict.identity ?? identity;
}
