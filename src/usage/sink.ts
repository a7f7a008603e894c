/**
 * The record stage's usage sink for accounting: every answer (from an upstream, or saved by the cache) is counted
 * in the usage ledger under its key's name (`anonymous` for a caller without a key, where the proxy lets them in:
 * only admin keys configured), and what it spent is charged to the key's budgets: its tpm estimate corrected to
 * the tokens the upstream reported (none for a cache hit or an error without usage, such as an upstream's 400; a
 * success without usage keeps the estimate).
 */

import { KeyIdentity } from "../keys/admission.ts";
import { ANONYMOUS } from "../keys/schema.ts";
import type { UsageReport, UsageSink } from "../proxy/usage.ts";
import { usageOf } from "./figures.ts";
import type { UsageLedger } from "./ledger.ts";

/**
 * Usage is counted only when the proxy has keys of some kind, or a usage stream to write (a Python LLMProxy config
 * has a stream and no keys: its requests go to the stream as `anonymous`).
 */
export const countsUsage = (deps: {
  readonly usage: Pick<UsageLedger, "streams">;
  readonly keys: { readonly clientKeysRequired: boolean; readonly hasAdminKeys: boolean };
}) => deps.keys.clientKeysRequired || deps.keys.hasAdminKeys || deps.usage.streams;

export function usageSink(ledger: UsageLedger): UsageSink {
  return (report: UsageReport) => {
    const { request } = report;
    const identity = request.identity;
    const endpoint = request.group.endpoints.find((candidate) => candidate.id === report.endpoint);
    const figures = report.usage ? usageOf({ usage: report.usage, model: report.model }) : undefined;
    const spent = ledger.record({
      key: identity?.id ?? ANONYMOUS,
      group: request.group.name,
      endpoint: report.endpoint,
      endpointModel: endpoint?.model,
      route: request.route,
      status: report.status,
      cacheHit: report.cached === true,
      figures,
      requestId: request.requestId,
    });
    // A cache hit spent nothing (`spent` is 0): its tpm estimate is given back; it still counts against rpm. An
    // upstream success with no usage (left out, or a stream cut before it) keeps it: 0 would let a key past its tpm.
    if (!(identity instanceof KeyIdentity)) return;
    const unreported = figures === undefined && !report.cached && report.status >= 200 && report.status < 300;
    identity.settle(unreported ? { ...spent, unreported } : spent);
  };
}
