/**
 * Recording a streamed answer while it passes through: `recordStream` is a watcher (`proxy/tap.ts`: the bytes
 * reach the client unchanged, at the client's pace, and the watchers stacked on a stream are one stream layer)
 * that keeps a bounded copy, cut into the stream's SSE events, and reports it only when it holds the stream's
 * terminal event: `data: [DONE]` for Chat Completions, a `response.completed` event for Responses. The stream
 * ended cleanly after it, or was cancelled or cut after it on an event boundary (the `openai` client stops
 * reading at `[DONE]` and cancels the body, whose end may come in a later read: the answer is whole). Never for a
 * stream cancelled or cut before its terminal event, or that carried an error event or an event whose data is not
 * a JSON object (`[DONE]` aside: a gateway's text, an object cut short), had nothing before its terminal event, was
 * not valid UTF-8, or outgrew `maxBytes` (the copy is dropped at once then). Line breaks (`\n`, `\r\n`, `\r`) and characters
 * may be split anywhere across chunks: the events come from the one SSE scanner (`sse/scanner.ts`), which only
 * finds their boundaries here (a chunk that is one whole event, the usual one, is told so by its text and skips
 * it). Each event's bytes are decoded once (again, strictly, only when the text has a
 * U+FFFD) and its `event` and `data` fields are read from that text (`sse/text_fields.ts`): no copy of its bytes.
 */

import type { Route } from "../core/route.ts";
import { SseScanner } from "../sse/scanner.ts";
import { TextFields } from "../sse/text_fields.ts";
import { tapStream } from "../proxy/tap.ts";
import { startsWithBom } from "../util/bytes.ts";

const decoder = new TextDecoder();
const LF = 10;
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

export interface Recording {
  /** The raw text of each event in order, line breaks included; joined, they are the stream byte for byte. */
  readonly events: readonly string[];
  /** Size of the stream in bytes. */
  readonly bytes: number;
  /**
   * The UTF-8 size of the events' text (the stream's bytes, bytes after the last event included): what the
   * entry's body weighs in the store, known without a scan of it.
   */
  readonly textBytes: number;
}

/** Why a stream that ended was not recorded. */
export type Unrecorded =
  | "too_large"
  | "not_utf8"
  | "not_json"
  | "error_event"
  | "no_terminal_event"
  | "empty";

export interface RecorderOptions {
  readonly route: Route;
  /** A stream larger than this is not recorded. */
  readonly maxBytes: number;
  /** Called once, when the stream ended (or was cancelled or cut after its terminal event), with the recording. */
  readonly onComplete: (recording: Recording) => void;
  /** Called once when the stream ended but cannot be stored (never for one cancelled or cut before its end). */
  readonly onIncomplete?: (reason: Unrecorded) => void;
}

/** The incremental recorder behind `recordStream`, usable on its own: `push` chunks, then `finish`. */
export class SseRecorder {
  readonly #route: Route;
  readonly #maxBytes: number;
  readonly #scanner = new SseScanner({ fields: false });
  readonly #fields = new TextFields();
  #events: string[] = [];
  #bytes = 0;
  #textBytes = 0;
  #answers = 0;
  #terminal = false;
  /** Why this stream cannot be stored; null while it still may be. */
  #spoiled: Unrecorded | null = null;

  constructor(route: Route, maxBytes: number) {
    this.#route = route;
    this.#maxBytes = maxBytes;
  }

  /** Why the stream will not be stored, or null while it may still be. */
  get spoiled(): Unrecorded | null {
    return this.#spoiled;
  }

  push(chunk: Uint8Array): void {
    if (this.#spoiled !== null) return;
    this.#bytes += chunk.byteLength;
    if (this.#bytes > this.#maxBytes) return this.#spoil("too_large");
    // The usual chunk is whole events (a paced upstream's read brings one, a busy process's a few): told so by its
    // text, whose line breaks are the bytes' (a bad byte never takes a CR or LF into its U+FFFD), it skips the
    // scanner when its events end in `\n\n` alone (no CR, no stray blank line).
    const last = chunk.length - 1;
    if (this.#scanner.idle && last > 1 && chunk[last] === LF && chunk[last - 1] === LF && chunk[0] !== LF) {
      const text = decoder.decode(chunk);
      if (!text.includes("\r")) {
        if (text.indexOf("\n\n") === text.length - 2) return this.#keep(chunk, text);
        if (chunk[0] !== 0xef && !/[\n][\n][\n]|[\uFEFF\uFFFD]/.test(text)) return this.#keepAll(chunk, text);
      }
    }
    for (const event of this.#scanner.push(chunk)) this.#keep(event.raw);
  }

  /**
   * Several whole events, each ending at a `\n\n`, whose text holds no BOM and no U+FFFD: it is theirs, event by
   * event (valid UTF-8, no BOM for the decoder to drop), and the chunk's bytes are the text's UTF-8 size.
   */
  #keepAll(chunk: Uint8Array, text: string): void {
    this.#textBytes += chunk.byteLength;
    for (let at = 0; at < text.length && this.#spoiled === null;) {
      const end = text.indexOf("\n\n", at) + 2;
      const event = text.slice(at, end);
      this.#events.push(event);
      this.#read(event, false);
      at = end;
    }
  }

  /**
   * Whether what was pushed so far is a whole answer although the stream did not end: its terminal event is in,
   * and no event is partly read (a stream cancelled or cut here loses nothing of it).
   */
  get whole(): boolean {
    return this.#terminal && this.#spoiled === null && this.#scanner.idle;
  }

  /** The recording when the stream is complete and storable, else null. Call once, after the last chunk. */
  finish(): Recording | null {
    if (this.#spoiled !== null) return null;
    const { events, rest } = this.#scanner.end();
    for (const event of events) this.#keep(event.raw);
    // Bytes after the last blank line are kept but end no event: the SSE spec (and the SDKs) drop them too.
    if (rest && this.#spoiled === null) this.#text(rest);
    if (this.#spoiled !== null) return null;
    if (!this.#terminal) return this.#spoil("no_terminal_event"), null;
    if (this.#answers === 0) return this.#spoil("empty"), null;
    return { events: this.#events, bytes: this.#bytes, textBytes: this.#textBytes };
  }

  /** An event's bytes, and their text as the lenient decoder made it when it did already. */
  #keep(raw: Uint8Array, lenient?: string): void {
    if (this.#spoiled !== null) return;
    // A BOM first in the bytes is not in the text (the decoder drops it), yet it is part of the first field's name.
    const bom = startsWithBom(raw);
    const text = this.#text(raw, lenient, bom);
    if (text !== undefined) this.#read(text, bom);
  }

  /** An event's fields, read from its text (`bom`: its bytes began with a BOM), and what they say. */
  #read(text: string, bom: boolean): void {
    if (this.#terminal) return;
    const fields = this.#fields;
    fields.read(text, bom);
    if (fields.data !== null) this.#dispatch(fields.event, fields.data);
  }

  /** Keeps an event's text; a stream that is not valid UTF-8 is not stored (a replay must be byte-identical). */
  #text(raw: Uint8Array, lenient?: string, bom = startsWithBom(raw)): string | undefined {
    // The lenient decoder is twice as fast as the strict one here (~0.5 against ~1.1 us for a 260-byte event). It
    // replaces each bad sequence with U+FFFD: text without one is what the strict decoder returns; text with one
    // (bad bytes, or a U+FFFD that came as such) is decoded again, strictly, to tell which.
    let text = lenient ?? decoder.decode(raw);
    if (text.includes("\uFFFD")) {
      try {
        text = strictDecoder.decode(raw);
      } catch {
        this.#spoil("not_utf8");
        return undefined;
      }
    }
    // Valid UTF-8 (checked above), so the text encodes back to its bytes; a BOM that opened them, which the decoder
    // dropped, is put back in what is kept (a replay without it would turn `\uFEFFdata:` into a data field).
    this.#events.push(bom ? "\uFEFF" + text : text);
    this.#textBytes += raw.byteLength;
    return text;
  }

  #spoil(reason: Unrecorded): void {
    this.#spoiled ??= reason;
    this.#events = [];
  }

  #dispatch(name: string | null, data: string): void {
    if (this.#terminal) return;
    if (data !== "[DONE]" && !isObject(data)) return this.#spoil("not_json");
    if (this.#route === "responses") {
      const type = name ?? dataType(data);
      if (type === "response.completed") this.#terminal = true;
      else if (type === "error" || type === "response.failed" || type === "response.incomplete") {
        this.#spoil("error_event");
      } else this.#answers++;
      return;
    }
    if (data === "[DONE]") this.#terminal = true;
    else if (/^\s*\{\s*"error"\s*:/.test(data)) this.#spoil("error_event");
    else this.#answers++;
  }
}

/**
 * Whether an event's data is a JSON object. The usual event opens with `{` and closes with `}`: one scan of its
 * brackets outside strings tells whether that `}` closes the object (an object cut short at an inner `}` ends in
 * one too, and a stream stored with it would replay the cut to every identical request). Any other is parsed
 * (whitespace around it).
 */
function isObject(data: string): boolean {
  const last = data.length - 1;
  if (data.charCodeAt(0) === 123 && data.charCodeAt(last) === 125) return closesAtEnd(data, last);
  try {
    const parsed: unknown = JSON.parse(data);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed);
  } catch {
    return false;
  }
}

/**
 * Whether the bracket that opens `data` is closed at its last character (`last`), and not before: strings are
 * skipped whole (`indexOf` to each closing quote, one after an odd run of backslashes being escaped).
 */
function closesAtEnd(data: string, last: number): boolean {
  let depth = 0;
  for (let i = 0; i <= last; i++) {
    const c = data.charCodeAt(i);
    if (c === 34) {
      i = data.indexOf('"', i + 1);
      while (i > 0 && escaped(data, i)) i = data.indexOf('"', i + 1);
      if (i < 0) return false;
    } else if (c === 123 || c === 91) depth++;
    else if ((c === 125 || c === 93) && --depth === 0) return i === last;
  }
  return false;
}

/** Whether the quote at `at` is escaped: preceded by an odd number of backslashes. */
function escaped(data: string, at: number): boolean {
  let slashes = 0;
  while (data.charCodeAt(at - 1 - slashes) === 92) slashes++;
  return slashes % 2 === 1;
}

/** The `type` of a data-only Responses event, read only when it may be one that matters. */
function dataType(data: string): string | null {
  if (!/"type"\s*:\s*"(response\.(completed|failed|incomplete)|error)"/.test(data)) return null;
  try {
    const parsed = JSON.parse(data) as { type?: unknown };
    return typeof parsed.type === "string" ? parsed.type : null;
  } catch {
    return null;
  }
}

/** `source` passed through, recorded on its way (a watcher of `proxy/tap.ts`); see the module comment. */
export function recordStream(
  source: ReadableStream<Uint8Array>,
  options: RecorderOptions,
): ReadableStream<Uint8Array> {
  const recorder = new SseRecorder(options.route, options.maxBytes);
  return tapStream(source, (chunk) => recorder.push(chunk), (complete) => {
    if (!complete && !recorder.whole) return;
    const recording = recorder.finish();
    if (recording) options.onComplete(recording);
    else options.onIncomplete?.(recorder.spoiled ?? "no_terminal_event");
  });
}
