/**
 * The events of a Responses stream that a turn's record needs: `response.created` (the id, known from the start)
 * and `response.completed` (the whole response). A stream is mostly other events (`response.output_text.delta`,
 * one per token or so), and those are found on the bytes: an event that names neither type anywhere is not decoded.
 * The rest are read as the SSE scanner reads them, fields and all.
 */

import { type SseEvent, SseScanner } from "../sse/scanner.ts";
import { BytePattern } from "../util/bytes.ts";

const encoder = new TextEncoder();
/** Both types start so: searched for by a shift table (an `indexOf` per `.` cost ~0.1 us each, issue 22.3a). */
const TURN = new BytePattern(encoder.encode("response.c"));
const TYPE_AT = "response.".length;
const CREATED = encoder.encode("created");
const COMPLETED = encoder.encode("completed");
const LF = 10;
const NONE: readonly TurnEvent[] = [];

/** Whether `bytes` holds `part` at `at`. */
function holds(bytes: Uint8Array, at: number, part: Uint8Array): boolean {
  if (at < 0 || at + part.length > bytes.length) return false;
  for (let i = 0; i < part.length; i++) if (bytes[at + i] !== part[i]) return false;
  return true;
}

/** Whether the event's bytes name `response.created` or `response.completed` (in its `event:` line or its data). */
function namesTurnEvent(raw: Uint8Array): boolean {
  for (let at = TURN.indexIn(raw); at !== -1; at = TURN.indexIn(raw, at + 1)) {
    if (holds(raw, at + TYPE_AT, CREATED) || holds(raw, at + TYPE_AT, COMPLETED)) return true;
  }
  return false;
}

/** A `response.created` or `response.completed` event: its type and its data. */
export interface TurnEvent {
  readonly type: "response.created" | "response.completed";
  readonly data: string;
}

export class TurnEvents {
  readonly #scanner = new SseScanner({ fields: false });

  /** The `response.created` and `response.completed` events a chunk completes. */
  push(chunk: Uint8Array): readonly TurnEvent[] {
    // Whole events with no event open (the usual chunk: one delta event, ending in its blank line) are cut into
    // events only when one of them may be either type: the others are searched once.
    const last = chunk.length - 1;
    if (
      this.#scanner.idle && last > 0 && chunk[last] === LF && chunk[last - 1] === LF && !namesTurnEvent(chunk)
    ) {
      return NONE;
    }
    let found: TurnEvent[] | undefined;
    for (const { raw } of this.#scanner.push(chunk)) {
      if (!namesTurnEvent(raw)) continue;
      // A whole event, blank line included: a scanner of its own reads it back with its fields (`end` for one
      // that a lone `\r` ends).
      const reader = new SseScanner();
      for (const event of [...reader.push(raw), ...reader.end().events]) {
        const type = eventType(event);
        if (type === "response.created" || type === "response.completed") {
          (found ??= []).push({ type, data: event.data! });
        }
      }
    }
    return found ?? NONE;
  }
}

/** The event's type from its `event:` line, or for streams that send none, from the `type` in its data. */
function eventType(event: SseEvent): string | null {
  if (event.data === null) return null;
  if (event.event !== null) return event.event;
  if (event.data.includes('"response.created"')) return "response.created";
  if (event.data.includes('"response.completed"')) return "response.completed";
  return null;
}
