/**
 * The usage part of the record stage: what an answer says it used is settled against the endpoint's `tpm` budget
 * (the plan charged an estimate) and reported to the usage sinks (e.g. per-key accounting). A JSON answer's usage
 * is read at once from its parse; a stream's from its usage event, once it ended; streams are looked into only when
 * a budget or a sink needs it.
 */

import type { Answer } from "../core/answer.ts";
import type { Admitted, GenerationRequest } from "../core/request.ts";
import type { Budgets } from "../ratelimit/budget.ts";
import { StreamUsage, usageOf } from "../ratelimit/stream_usage.ts";
import type { Served } from "./attempts.ts";
import { tapStream } from "./tap.ts";
import { usageTokens } from "../ratelimit/budget.ts";

export interface UsageReport {
  readonly request: Admitted<GenerationRequest>;
  /** The endpoint that answered. */
  readonly endpoint: string;
  readonly status: number;
  /** The answer's `usage` object as the upstream reported it; undefined when it reported none (or was cut). */
  readonly usage: Readonly<Record<string, unknown>> | undefined;
  /** Total tokens in `usage` (`total_tokens`, else input plus output). */
  readonly tokens: number | undefined;
}

/** Told the usage of every answer that came from an upstream (not of cached ones). Must not throw. */
export type UsageSink = (report: UsageReport) => void;

/** Settles the budget and reports usage; returns the answer to hand on (a stream watched on its way). */
export function recordUsage(
  request: Admitted<GenerationRequest>,
  served: Served,
  budgets: Budgets,
  sinks: readonly UsageSink[],
): Answer {
  const { answer, pick } = served;
  const report = (usage: Record<string, unknown> | undefined) => {
    const tokens = usage && usageTokens({ usage });
    if (pick.reservation) budgets.settleTokens(pick.reservation, tokens);
    for (const sink of sinks) {
      sink({ request, endpoint: pick.endpoint.id, status: answer.status, usage, tokens });
    }
  };
  const body = answer.body;
  if (body.kind !== "stream") {
    if (pick.reservation || sinks.length > 0) report(body.kind === "json" ? usageOf(body.parsed) : undefined);
    return answer;
  }
  // Only a tpm budget or a sink needs the stream's usage report; other streams are not looked into.
  if (pick.reservation?.endpoint.tpm === undefined && sinks.length === 0) return answer;
  const usage = new StreamUsage();
  const stream = tapStream(body.stream, (chunk) => usage.push(chunk), (complete) => {
    if (complete) report(usage.usage);
    else if (sinks.length > 0) report(undefined);
  });
  return { ...answer, body: { kind: "stream", stream } };
}
