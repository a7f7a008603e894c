/**
 * What the OpenTelemetry GenAI semantic conventions call things, and the facts of an answer they record: the
 * operation name of a route, the provider name of an endpoint, and the response model, id and token usage read
 * from a JSON answer or watched in a stream as it passes. Never any text of a prompt or an answer.
 */

import type { Provider } from "../config/config.ts";
import { SseScanner } from "../sse/scanner.ts";

/** `gen_ai.operation.name` of an upstream path (`chat/completions`, `responses/...`, `embeddings`). */
export function operationName(path: string): string {
  if (path.startsWith("embeddings")) return "embeddings";
  if (path.startsWith("chat/") || path.startsWith("responses")) return "chat";
  return path.split("/")[0] || "unknown";
}

/** `gen_ai.provider.name`: the conventions' well-known values for OpenAI and Azure OpenAI. */
export const providerName = (provider: Provider): string =>
  provider === "azure" ? "azure.ai.openai" : "openai";

export interface AnswerFacts {
  responseModel?: string;
  responseId?: string;
  inputTokens?: number;
  outputTokens?: number;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const isCount = (value: unknown): value is number =>
  typeof value === "number" && Number.isInteger(value) && value >= 0;

/** Reads model, id and usage from an answer object (Chat Completions, Responses or Embeddings shapes) into `facts`. */
export function readAnswer(answer: unknown, facts: AnswerFacts = {}): AnswerFacts {
  if (!isRecord(answer)) return facts;
  if (typeof answer.model === "string") facts.responseModel = answer.model.slice(0, 200);
  if (typeof answer.id === "string") facts.responseId = answer.id.slice(0, 200);
  const usage = answer.usage;
  if (isRecord(usage)) {
    const input = [usage.prompt_tokens, usage.input_tokens].find(isCount);
    const output = [usage.completion_tokens, usage.output_tokens].find(isCount);
    if (input !== undefined) facts.inputTokens = input;
    if (output !== undefined) facts.outputTokens = output;
  }
  return facts;
}

/**
 * Watches a streamed answer's events for the same facts: Chat Completions chunks carry `model` and `id`, and the
 * usage chunk (`stream_options.include_usage`); the Responses API's `response.created` / `response.completed`
 * events carry them under `response`. Only events that can hold them are parsed.
 */
export class StreamFacts {
  readonly facts: AnswerFacts = {};
  readonly #scanner = new SseScanner();
  #seenFirst = false;
  #errorCode: string | undefined;

  /**
   * The `code` of the last event when it is an error event (Chat Completions' `data: {"error": ...}`, the Responses
   * API's `event: error`): how the proxy ends a stream the upstream cut, or a shared stream that was lost.
   */
  get errorCode(): string | undefined {
    return this.#errorCode;
  }

  push(chunk: Uint8Array): void {
    for (const event of this.#scanner.push(chunk)) {
      if (event.data === null) continue;
      this.#errorCode = event.event === "error" || event.data.startsWith('{"error"')
        ? codeOf(event.data)
        : undefined;
      const first = !this.#seenFirst;
      if (!first && !event.data.includes('"usage"')) continue;
      if (event.data === "[DONE]") continue;
      let data: unknown;
      try {
        data = JSON.parse(event.data);
      } catch {
        continue;
      }
      this.#seenFirst = true;
      readAnswer(isRecord(data) && isRecord(data.response) ? data.response : data, this.facts);
    }
  }
}

/** An error event's code: `{"error": {"code"}}` or the Responses API's `{"type": "error", "code"}`. */
function codeOf(data: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (!isRecord(parsed)) return undefined;
  const code = isRecord(parsed.error) ? parsed.error.code : parsed.code;
  return typeof code === "string" ? code : undefined;
}
