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

/** Runs the rules: the request with its identity, or the first rejection thrown. */
export async function admit<R extends IncomingRequest>(
  rules: readonly AdmissionRule[],
  request: R,
): Promise<Admitted<R>> {
  let identity: Identity | null = null;
  for (const rule of rules) {
    const verdict = await rule(request);
    if (!verdict.admit) throw verdict.error;
    if (verdict.identity) identity = verdict.identity;
  }
  return { ...request, identity };
}
