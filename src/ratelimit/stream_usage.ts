/**
 * Watches a streamed answer for the usage it reports: the `stream_options.include_usage` chunk of Chat
 * Completions, or the `usage` of `response.completed` for the Responses API. Used only when something needs it (an
 * endpoint's `tpm` budget, a usage recorder), so other streams pay nothing.
 */

import { SseScanner } from "../sse/scanner.ts";
import { usageTokens } from "./budget.ts";

export class StreamUsage {
  readonly #scanner = new SseScanner();
  #usage: Record<string, unknown> | undefined;
  #model: string | undefined;

  /** The model the usage report names (the chunk's or the response's `model`), when it names one. */
  get model(): string | undefined {
    return this.#model;
  }

  /** The last `usage` object reported; undefined when the stream has reported none. */
  get usage(): Record<string, unknown> | undefined {
    return this.#usage;
  }

  /** Tokens reported so far (the last report wins); undefined when the stream has reported none. */
  get tokens(): number | undefined {
    return this.#usage && usageTokens({ usage: this.#usage });
  }

  push(chunk: Uint8Array): void {
    for (const event of this.#scanner.push(chunk)) {
      if (event.data === null || !event.data.includes('"usage"')) continue;
      try {
        const data = JSON.parse(event.data);
        const usage = usageOf(data);
        if (usage && usageTokens({ usage }) !== undefined) {
          this.#usage = usage;
          this.#model = modelOf(data);
        }
      } catch { /* not JSON: not a usage report */ }
    }
  }
}

/** The `usage` object of an answer (Chat Completions, embeddings) or of a Responses event or object. */
export function usageOf(answer: unknown): Record<string, unknown> | undefined {
  if (!isRecord(answer)) return undefined;
  if (isRecord(answer.usage)) return answer.usage;
  if (isRecord(answer.response) && isRecord(answer.response.usage)) return answer.response.usage;
  return undefined;
}

/** The `model` an answer (or a Responses event's response) names. */
export function modelOf(answer: unknown): string | undefined {
  if (!isRecord(answer)) return undefined;
  const holder = isRecord(answer.response) ? answer.response : answer;
  return typeof holder.model === "string" && holder.model !== "" ? holder.model : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
