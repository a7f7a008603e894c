/**
 * Watches a streamed answer for the tokens it reports: the `stream_options.include_usage` chunk of Chat
 * Completions, or the `usage` of `response.completed` for the Responses API. Used only for endpoints with a `tpm`
 * budget, so every other stream pays nothing.
 */

import { SseParser } from "../sse/parse.ts";
import { usageTokens } from "./budget.ts";

export class StreamUsage {
  readonly #parser = new SseParser();
  #tokens: number | undefined;

  /** Tokens reported so far (the last report wins); undefined when the stream has reported none. */
  get tokens(): number | undefined {
    return this.#tokens;
  }

  push(chunk: Uint8Array): void {
    for (const event of this.#parser.push(chunk)) {
      if (!event.data.includes('"usage"')) continue;
      try {
        const data = JSON.parse(event.data) as Record<string, unknown>;
        const tokens = usageTokens(data) ?? usageTokens(data.response);
        if (tokens !== undefined) this.#tokens = tokens;
      } catch { /* not JSON: not a usage report */ }
    }
  }
}
