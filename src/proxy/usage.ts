/**
 * The usage part of the record stage: what an answer says it used is settled against the endpoint's `tpm` budget
 * (the plan charged an estimate) and reported to the usage sinks (e.g. per-key accounting). A JSON answer's usage
 * is read at once from its parse; a stream's from its usage event, once it ended (or once its client left, when
 * the event came before); streams are looked into only when a budget or a sink needs it.
 */

import type { Answer } from "../core/answer.ts";
import type { Admitted, GenerationRequest } from "../core/request.ts";
import type { Budgets } from "../ratelimit/budget.ts";
import { modelOf, StreamUsage, usageOf } from "../ratelimit/stream_usage.ts";
import type { Served } from "./call.ts";
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
  /** The model the answer names (for pricing: Azure names the model behind a deployment). */
  readonly model?: string;
  /** The answer came from the cache (or an identical request in flight): its usage was saved, not spent. */
  readonly cached?: boolean;
}

/** Told the usage of every answer: from an upstream, or (`cached`) from the cache. Must not throw. */
export type UsageSink = (report: UsageReport) => void;

/** Settles the budget and reports usage; returns the answer to hand on (a stream watched on its way). */
export function recordUsage(
  request: Admitted<GenerationRequest>,
  served: Served,
  budgets: Budgets,
  sinks: readonly UsageSink[],
): Answer {
  const { answer, pick } = served;
  const report = (usage: Record<string, unknown> | undefined, model?: string) => {
    const tokens = usage && usageTokens({ usage });
    if (pick.reservation) budgets.settleTokens(pick.reservation, tokens);
    for (const sink of sinks) {
      sink({ request, endpoint: pick.endpoint.id, status: answer.status, usage, tokens, model });
    }
  };
  const body = answer.body;
  if (body.kind !== "stream") {
    if (pick.reservation || sinks.length > 0) {
      const parsed = body.kind === "json" ? body.parsed : undefined;
      report(usageOf(parsed), modelOf(parsed));
    }
    return answer;
  }
  // Only a tpm budget or a sink needs the stream's usage report; other streams are not looked into.
  if (pick.reservation?.endpoint.tpm === undefined && sinks.length === 0) return answer;
  return { ...answer, body: { kind: "stream", stream: watchUsage(body.stream, report, sinks.length > 0) } };
}

/** Reports a cached (or coalesced) answer's usage to the sinks: the tokens it saved. */
export function recordCachedUsage(
  request: Admitted<GenerationRequest>,
  answer: Answer,
  sinks: readonly UsageSink[],
): Answer {
  if (sinks.length === 0) return answer;
  const report = (usage: Record<string, unknown> | undefined, model?: string) => {
    const tokens = usage && usageTokens({ usage });
    for (const sink of sinks) {
      sink({
        request,
        endpoint: answer.meta.endpoint,
        status: answer.status,
        usage,
        tokens,
        model,
        cached: true,
      });
    }
  };
  const body = answer.body;
  if (body.kind === "stream") {
    return { ...answer, body: { kind: "stream", stream: watchUsage(body.stream, report, true) } };
  }
  let parsed: unknown;
  try {
    parsed = body.kind === "json" ? body.parsed : JSON.parse(new TextDecoder().decode(toBytes(body.bytes)));
  } catch { /* not JSON: no usage */ }
  report(usageOf(parsed), modelOf(parsed));
  return answer;
}

function watchUsage(
  source: ReadableStream<Uint8Array>,
  report: (usage: Record<string, unknown> | undefined, model?: string) => void,
  always: boolean,
): ReadableStream<Uint8Array> {
  const usage = new StreamUsage();
  return tapStream(source, (chunk) => usage.push(chunk), (complete) => {
    if (complete) usage.end();
    // A client may leave once it has what it wants, before the upstream's end (the `openai` client cancels at
    // `[DONE]`): a usage report read by then is what the upstream used all the same.
    if (complete || usage.usage !== undefined) report(usage.usage, usage.model);
    else if (always) report(undefined);
  });
}

const toBytes = (bytes: Uint8Array | string) =>
  typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
