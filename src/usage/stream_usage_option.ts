/**
 * Streamed Chat Completions report their tokens only when asked (`stream_options.include_usage`). To count a
 * stream whose client did not ask, the proxy asks the upstream for it (`askForUsage`), then takes out of the
 * client's stream what the asking added (`withoutUsageChunk`): the final usage chunk (empty `choices`, a `usage`
 * object) and the `"usage":null` every other chunk then carries. Events that carry neither pass byte for byte.
 */

import type { Answer } from "../core/answer.ts";
import { EventFramer } from "../sse/frame.ts";

/** Whether the client asked for the usage chunk itself. */
export function asksForUsage(body: Readonly<Record<string, unknown>>): boolean {
  const options = body.stream_options;
  return typeof options === "object" && options !== null &&
    (options as Record<string, unknown>).include_usage === true;
}

/** The body with `stream_options.include_usage: true` (other stream options kept). */
export function askForUsage(body: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const options = typeof body.stream_options === "object" && body.stream_options !== null
    ? body.stream_options
    : {};
  return { ...body, stream_options: { ...options, include_usage: true } };
}

/** A streamed answer without what asking for usage added; other answers unchanged. */
export function withoutUsageChunk(answer: Answer): Answer {
  if (answer.body.kind !== "stream") return answer;
  return { ...answer, body: { kind: "stream", stream: answer.body.stream.pipeThrough(usageStripper()) } };
}

const USAGE = '"usage"';
const BOUNDARY = /(\r\n\r\n|\n\n|\r\r)/;

export function usageStripper(): TransformStream<Uint8Array, Uint8Array> {
  const framer = new EventFramer();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const pass = (bytes: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>) => {
    const text = decoder.decode(bytes);
    if (!text.includes(USAGE)) return controller.enqueue(bytes);
    const parts = text.split(BOUNDARY);
    let out = "";
    // parts: event, boundary, event, boundary, ..., trailing ("" after the last boundary).
    for (let i = 0; i < parts.length; i += 2) {
      const event = stripEvent(parts[i]);
      if (event !== null) out += event + (parts[i + 1] ?? "");
    }
    if (out !== "") controller.enqueue(encoder.encode(out));
  };
  return new TransformStream({
    transform(chunk, controller) {
      const events = framer.push(chunk);
      if (events) pass(events, controller);
    },
    flush(controller) {
      const rest = framer.rest();
      if (rest) pass(rest, controller);
    },
  });
}

/** One event without `"usage":null`; null for the usage chunk itself (dropped). */
function stripEvent(event: string): string | null {
  if (!event.includes(USAGE)) return event;
  const match = /^data: ?(.*)$/m.exec(event);
  if (!match) return event;
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(match[1]);
  } catch {
    return event;
  }
  if (typeof data !== "object" || data === null || !("usage" in data)) return event;
  if (data.usage !== null && Array.isArray(data.choices) && data.choices.length === 0) return null;
  if (data.usage !== null) return event;
  // As upstreams write it (compact, `usage` last), the text is cut; otherwise the object is written again.
  const line = match[0];
  const cut = line.endsWith(',"usage":null}') ? line.slice(0, -',"usage":null}'.length) + "}" : undefined;
  if (cut !== undefined) return event.replace(line, () => cut);
  const { usage: _usage, ...rest } = data;
  return event.replace(line, () => `data: ${JSON.stringify(rest)}`);
}
