/**
 * Streamed Chat Completions report their tokens only when asked (`stream_options.include_usage`). To count a
 * stream whose client did not ask, the proxy asks the upstream for it (`askForUsage`), then takes out of the
 * client's stream what the asking added (`withoutUsageChunk`): the final usage chunk (empty `choices`, a `usage`
 * object) and the `"usage":null` every other chunk then carries. Events that carry neither pass byte for byte.
 */

import type { Answer } from "../core/answer.ts";
import { mapStream } from "../proxy/tap.ts";
import { EventFramer } from "../sse/frame.ts";
import { slabCopyRange } from "../upstream/chunk_slab.ts";

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
  const stripper = new UsageStripper();
  const stream = mapStream(answer.body.stream, (chunk) => stripper.push(chunk), () => stripper.end());
  return { ...answer, body: { kind: "stream", stream } };
}

/** The same as a `TransformStream`. */
export function usageStripper(): TransformStream<Uint8Array, Uint8Array> {
  const stripper = new UsageStripper();
  const pass = (out: Uint8Array | undefined, controller: TransformStreamDefaultController<Uint8Array>) => {
    if (out) controller.enqueue(out);
  };
  return new TransformStream({
    transform: (chunk, controller) => pass(stripper.push(chunk), controller),
    flush: (controller) => pass(stripper.end(), controller),
  });
}

const USAGE = '"usage"';
/**
 * A blank line: two line ends, each CR-LF, LF or CR, in any mix (`\n\r\n` is an LF line, then a CR-LF blank line).
 * A CR followed by an LF is always one CR-LF: the chunks hold whole events, so none ends between the two.
 */
const BOUNDARY = /((?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n))/;
const encoder = new TextEncoder();
/** How a chunk of a stream asked for usage ends (compact, `usage` last), and what it ends in once taken out. */
const NULL_USAGE_END = encoder.encode(',"usage":null}\n\n');
const PLAIN_END = encoder.encode("}\n\n");
const DATA_START = encoder.encode("data: {");

/** Whole events in, the same events out without what asking for usage added. */
class UsageStripper {
  readonly #framer = new EventFramer();
  readonly #decoder = new TextDecoder();

  push(chunk: Uint8Array): Uint8Array | undefined {
    const events = this.#framer.push(chunk);
    return events && this.#pass(events);
  }

  end(): Uint8Array | undefined {
    const rest = this.#framer.rest();
    return rest && this.#pass(rest);
  }

  #pass(bytes: Uint8Array): Uint8Array | undefined {
    // Every chunk of such a stream is one `data: {...,"usage":null}` line: cut on its bytes, nothing decoded.
    const cut = nullUsageCut(bytes);
    if (cut) return cut;
    const text = this.#decoder.decode(bytes);
    if (!text.includes(USAGE)) return bytes;
    const parts = text.split(BOUNDARY);
    let out = "";
    // parts: event, boundary, event, boundary, ..., trailing ("" after the last boundary).
    for (let i = 0; i < parts.length; i += 2) {
      const event = stripEvent(parts[i]);
      if (event !== null) out += event + (parts[i + 1] ?? "");
    }
    return out === "" ? undefined : encoder.encode(out);
  }
}

/**
 * Events of a single `data: {` line each, ending in `,"usage":null}` (as upstreams write every chunk once asked for
 * usage), without that field: what `stripEvent` makes of them, read off the bytes. Several such events come in one
 * chunk when the upstream's read brought them together. Undefined when any event of the chunk is not one.
 */
function nullUsageCut(bytes: Uint8Array): Uint8Array | undefined {
  const length = bytes.length;
  const first = nullUsageEnd(bytes, 0);
  if (first === -1) return undefined;
  // Each event loses `,"usage":null}\n\n` and gains `}\n\n`. The ends of the events after the first are kept for
  // the copy (the chunk is scanned once).
  const drop = NULL_USAGE_END.length - PLAIN_END.length;
  let size = first - drop;
  let count = 0;
  for (let at = first; at < length;) {
    const end = nullUsageEnd(bytes, at);
    if (end === -1) return undefined;
    ends[count++] = end;
    size += end - at - drop;
    at = end;
  }
  // A copy in a shared slab (no buffer of its own per event): the first event up to its cut and the bytes after it
  // that `PLAIN_END` then overwrites (the tail is longer than it); each further event's cut part after it.
  const out = slabCopyRange(bytes, 0, size);
  let written = plainEnd(out, first - NULL_USAGE_END.length);
  for (let k = 0, at = first; k < count; k++) {
    const end = ends[k];
    const cut = end - NULL_USAGE_END.length;
    out.set(bytes.subarray(at, cut), written);
    written = plainEnd(out, written + cut - at);
    at = end;
  }
  return out;
}

/** Writes `}\n\n` (`PLAIN_END`) at `at`, byte by byte (a `set` call costs more); returns where it ends. */
function plainEnd(out: Uint8Array, at: number): number {
  out[at] = 0x7d;
  out[at + 1] = 10;
  out[at + 2] = 10;
  return at + 3;
}

/** `nullUsageCut`'s ends of the events after a chunk's first (reused: a chunk is cut at once, start to end). */
const ends: number[] = [];

/** The end (after its blank line) of the one-line `data: {...,"usage":null}` event at `at`; -1 when it is not one. */
function nullUsageEnd(bytes: Uint8Array, at: number): number {
  const length = bytes.length;
  const tail = NULL_USAGE_END.length;
  const start = at + DATA_START.length;
  if (length - start < tail) return -1;
  for (let i = 0; i < DATA_START.length; i++) if (bytes[at + i] !== DATA_START[i]) return -1;
  // One line: its first line break is the blank line's (one loop: two `indexOf` calls cost more). Four bytes a
  // step while none can be one (each is 14 or more), then byte by byte: ~130 ns for a 250-byte event, not ~155.
  let i = start;
  const last = length - 3;
  while (i < last && bytes[i] >= 14 && bytes[i + 1] >= 14 && bytes[i + 2] >= 14 && bytes[i + 3] >= 14) i += 4;
  while (i < length && (bytes[i] >= 14 || (bytes[i] !== 10 && bytes[i] !== 13))) i++;
  const end = i + 2;
  if (end > length || end - tail < start) return -1;
  for (let k = 0; k < tail; k++) if (bytes[end - tail + k] !== NULL_USAGE_END[k]) return -1;
  return end;
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
