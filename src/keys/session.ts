/**
 * A key's limits on a realtime session, which does not go through the pipeline's admission stage (it is a WebSocket
 * relay, not one request). At the upgrade, before any upstream socket is opened, a session counts as one request:
 * one against `rpm`, its budgets must not be spent yet, and it takes a place among `max_parallel` that it holds
 * until it ends (`KeyIdentity.finish`). The tokens its responses report are charged to the key's `tpm` and budgets
 * as they come (`KeyIdentity.settle`); a session is not cut when it crosses a budget, the next one is refused.
 */

import type { UsageMetrics } from "../usage/metrics.ts";
import { KeyIdentity } from "./admission.ts";
import { KeyLimitError, type KeyLimits } from "./limits.ts";
import type { KeyPolicy } from "./policy.ts";

/**
 * How long a session's place among `max_parallel` is held if never given back (an instance that died): longer than
 * a Realtime API session may last (60 minutes). A session that lasts longer loses its place.
 */
export const SESSION_LEASE_MS = 61 * 60_000;

export interface SessionAdmissionDeps {
  readonly keyLimits: KeyLimits;
  readonly usage: { readonly metrics: UsageMetrics };
}

/**
 * Charges a session's start to `policy` (undefined when the proxy needs no key): resolves to the caller's identity
 * once its limits passed, rejects with the limit's 429 (`rate_limit_exceeded` or `insufficient_quota`).
 */
export async function admitSession(
  deps: SessionAdmissionDeps,
  policy: KeyPolicy | undefined,
): Promise<KeyIdentity | undefined> {
  if (!policy) return undefined;
  if (!policy.limited) return new KeyIdentity(policy, deps.keyLimits, false);
  const admission = deps.keyLimits.admit(policy, 0, SESSION_LEASE_MS);
  const identity = new KeyIdentity(policy, deps.keyLimits, false, admission, true);
  try {
    await identity.pending;
  } catch (error) {
    if (error instanceof KeyLimitError) deps.usage.metrics.refused(policy.id, error.limit);
    throw error;
  }
  return identity;
}
