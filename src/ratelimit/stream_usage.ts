/**
 * Watches a streamed answer for the usage it reports: the `stream_options.include_usage` chunk of Chat
 * Completions, or the `usage` of `response.completed` for the Responses API. Used only when something needs it (an
 * endpoint's `tpm` budget, a usage recorder), so other streams pay nothing.
 */

import { type SseEvent, SseScanner } from "../sse/scanner.ts";
import { usageTokens } from "./budget.ts";
import { BytePattern } from "../util/bytes.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const USAGE_KEY = encoder.encode('"usage"');
const NULL_VALUE = encoder.encode(":null");
const USAGE = new BytePattern(USAGE_KEY);
const LF = 10;

/** Whether `bytes` holds `part` at `at`. */
function holds(bytes: Uint8Array, at: number, part: Uint8Array): boolean {
  if (at < 0 || at + part.length > bytes.length) return false;
  for (let i = 0; i < part.length; i++) if (bytes[at + i] !== part[i]) return false;
  return true;
}

/**
 * Whether an event may report usage: it names `"usage"` other than as a compact `"usage":null` (which every chunk
 * of a stream asked for usage carries). Read off the bytes: the other events are neither decoded nor parsed.
 */
function mayReportUsage(raw: Uint8Array): boolean {
  for (let at = USAGE.indexIn(raw); at !== -1; at = USAGE.indexIn(raw, at + 1)) {
    if (!holds(raw, at + USAGE_KEY.length, NULL_VALUE)) return true;
  }
  return false;
}

/** The `data` lines of an event's text joined with `\n`, as the SSE scanner reads them; null when none. */
function dataOf(text: string): string | null {
  const lines: string[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === "data") lines.push("");
    else if (line.startsWith("data:")) lines.push(line.slice(line[5] === " " ? 6 : 5));
  }
  return lines.length > 0 ? lines.join("\n") : null;
}

export class StreamUsage {
  readonly #scanner = new SseScanner({ fields: false });
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
    // Whole events with no event open (the usual chunk: one event, ending in its blank line) are cut into events
    // only when one of them may report usage (the last one or two of a stream): the others are searched once.
    const last = chunk.length - 1;
    if (
      this.#scanner.idle && last > 0 && chunk[last] === LF && chunk[last - 1] === LF && !mayReportUsage(chunk)
    ) {
      return;
    }
    this.#read(this.#scanner.push(chunk));
  }

  /**
   * The stream ended: an event that its last byte completes is read too (a final `\r` ends a blank line only once
   * no `\n` can follow it). Call once, after the last chunk.
   */
  end(): void {
    this.#read(this.#scanner.end().events);
  }

  #read(events: readonly SseEvent[]): void {
    for (const event of events) {
      if (!mayReportUsage(event.raw)) continue;
      const text = dataOf(decoder.decode(event.raw));
      if (text === null || !text.includes('"usage"')) continue;
      try {
        const data = JSON.parse(text);
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
