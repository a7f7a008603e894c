/**
 * The tokens an answer reports, in one shape for every route: Chat Completions (`prompt_tokens`,
 * `completion_tokens`, `prompt_tokens_details.cached_tokens`, `completion_tokens_details.reasoning_tokens`), the
 * Responses API (`input_tokens`, `output_tokens` and their `_details`), embeddings (`prompt_tokens`), and the same
 * fields in image answers (gpt-image models), transcriptions (GPT-4o transcribe models; `whisper-1` reports seconds,
 * which are no tokens) and realtime `response.done` events. Streams report them in the `include_usage` chunk (chat),
 * in `response.completed` (Responses) or in `transcript.text.done` (transcriptions).
 */

import { isCount } from "../ratelimit/budget.ts";

export interface UsageFigures {
  /** Input tokens, cached ones included. */
  readonly input: number;
  /** Input tokens served from the upstream's prompt cache (priced at `cached_input`). */
  readonly cachedInput: number;
  /** Output tokens, reasoning ones included. */
  readonly output: number;
  readonly reasoning: number;
  /** The model the upstream says answered (`gpt-4o-2024-08-06`), when it says. */
  readonly model?: string;
}

export const totalTokens = (figures: UsageFigures) => figures.input + figures.output;

/** The figures of a parsed answer (JSON, or the data of a stream event); undefined when it reports none. */
export function usageOf(answer: unknown): UsageFigures | undefined {
  if (!isRecord(answer)) return undefined;
  // A Responses stream event carries the response object; `response.completed` has the final usage.
  if (isRecord(answer.response) && !isRecord(answer.usage)) return usageOf(answer.response);
  const usage = answer.usage;
  if (!isRecord(usage)) return undefined;
  const input = count(usage.prompt_tokens) ?? count(usage.input_tokens);
  const output = count(usage.completion_tokens) ?? count(usage.output_tokens);
  const total = count(usage.total_tokens);
  if (input === undefined && output === undefined && total === undefined) return undefined;
  // The Realtime API names them `input_token_details` and `output_token_details`.
  const inputDetails = record(usage.prompt_tokens_details) ?? record(usage.input_tokens_details) ??
    record(usage.input_token_details);
  const outputDetails = record(usage.completion_tokens_details) ?? record(usage.output_tokens_details) ??
    record(usage.output_token_details);
  const inputTokens = input ?? Math.max(0, (total ?? 0) - (output ?? 0));
  return {
    input: inputTokens,
    cachedInput: Math.min(inputTokens, count(inputDetails?.cached_tokens) ?? 0),
    output: output ?? Math.max(0, (total ?? 0) - inputTokens),
    reasoning: count(outputDetails?.reasoning_tokens) ?? 0,
    ...(typeof answer.model === "string" && answer.model !== "" ? { model: answer.model } : {}),
  };
}

/** A figure of tokens, rounded; none for one that is not (negative, not a number, past MAX_USAGE_TOKENS). */
function count(value: unknown): number | undefined {
  return isCount(value) ? Math.round(value) : undefined;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return isRecord(value) ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
