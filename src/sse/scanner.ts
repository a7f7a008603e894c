/**
 * The one server-sent-events scanner: incremental and byte-level. It cuts a byte stream into events (blocks that a
 * blank line ends) wherever the chunks were split: mid-line, between the `\r` and `\n` of a line break, one byte
 * per chunk. Lines are found on bytes, so a multi-byte UTF-8 character is never cut (its bytes are never CR or LF)
 * and a field's value is decoded only when it is one that matters (`data`, `event`). Each event keeps its raw
 * bytes, line breaks included: joined, they are the stream byte for byte (what the pass-through forwards and the
 * cache records). Serves the stream pass-through (`EventFramer`), the cache's recorder (whose events the replay
 * serves back one by one), usage extraction and the Responses observer.
 */

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;

export interface SseEvent {
  /** The event's bytes as they came, from its first line to the blank line that ends it, inclusive. */
  readonly raw: Uint8Array;
  /** The `event:` field, or null when absent (or when fields are not read). */
  readonly event: string | null;
  /** The `data:` lines joined with `\n`; null when the event has none (comments only) or fields are not read. */
  readonly data: string | null;
}

export interface ScannerOptions {
  /** Read the `event` and `data` fields (default true); false finds event boundaries only. */
  readonly fields?: boolean;
}

const decoder = new TextDecoder();

export class SseScanner {
  readonly #fields: boolean;
  /**
   * Bytes of the event being read (from its start), kept between pushes: `#carry[0, #carried)`; undefined when
   * none. The room behind them takes the next chunks in place, and it doubles when outgrown: an event of many
   * chunks costs a copy of each byte a bounded number of times, not one of everything so far per chunk.
   */
  #carry: Uint8Array | undefined;
  #carried = 0;
  /** In `#carry`: where the line being read starts, and how far the bytes were scanned. */
  #lineStart = 0;
  #scanned = 0;
  #event: string | null = null;
  #data: string[] = [];

  constructor(options: ScannerOptions = {}) {
    this.#fields = options.fields ?? true;
  }

  /** No event is partly read: the next byte starts a new one. */
  get idle(): boolean {
    return this.#carry === undefined;
  }

  /** Feeds bytes; returns the events they complete, in order (their `raw` views share one buffer). */
  push(chunk: Uint8Array): SseEvent[] {
    let carry = this.#carry;
    let buffer = chunk;
    if (carry) {
      const length = this.#carried + chunk.length;
      if (length > carry.length) {
        const grown = new Uint8Array(Math.max(length, carry.length * 2));
        grown.set(carry.subarray(0, this.#carried));
        carry = grown;
      }
      carry.set(chunk, this.#carried);
      buffer = carry.subarray(0, length);
    }
    const events: SseEvent[] = [];
    const end = buffer.length;
    let eventStart = 0;
    let lineStart = this.#lineStart;
    let i = this.#scanned;
    // Next CR and LF at or after `i` (-1: none left in this buffer), each searched again only once passed.
    let cr = -2;
    let lf = -2;
    while (i < end) {
      if (lf !== -1 && lf < i) lf = buffer.indexOf(LF, i);
      if (cr !== -1 && cr < i) cr = buffer.indexOf(CR, i);
      const at = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (at === -1) {
        i = end;
        break;
      }
      // A `\r` last in the buffer may be the first half of `\r\n`: decided when the next byte comes (or at `end`).
      if (at === cr && at + 1 === end) {
        i = at;
        break;
      }
      const next = at === cr && buffer[at + 1] === LF ? at + 2 : at + 1;
      if (at === lineStart) {
        events.push(this.#dispatch(buffer.subarray(eventStart, next)));
        eventStart = next;
      } else if (this.#fields) this.#field(buffer, lineStart, at);
      lineStart = i = next;
    }
    // What is kept: nothing; the carry as it is (no event ended in it, so no view of it was handed out: it may be
    // written on); or a copy of the tail (events handed out are views of what is before it).
    this.#carry = eventStart === end
      ? undefined
      : eventStart === 0 && carry
      ? carry
      : buffer.slice(eventStart);
    this.#carried = end - eventStart;
    this.#lineStart = lineStart - eventStart;
    this.#scanned = i - eventStart;
    return events;
  }

  /**
   * The stream ended: the event a final `\r` completes (if any), and the bytes after the last complete event (a
   * stream that ended without a blank line; no event, as for the SSE spec and the SDKs). Resets the scanner.
   */
  end(): { readonly events: SseEvent[]; readonly rest: Uint8Array | undefined } {
    const carry = this.#carry?.subarray(0, this.#carried);
    const at = this.#scanned;
    let events: SseEvent[] = [];
    let rest = carry;
    if (carry && at === carry.length - 1 && carry[at] === CR) {
      if (at === this.#lineStart) {
        events = [this.#dispatch(carry)];
        rest = undefined;
      } else if (this.#fields) this.#field(carry, this.#lineStart, at);
    }
    this.#carry = undefined;
    this.#lineStart = this.#scanned = this.#carried = 0;
    this.#event = null;
    this.#data = [];
    return { events, rest };
  }

  #dispatch(raw: Uint8Array): SseEvent {
    const event = { raw, event: this.#event, data: this.#data.length > 0 ? this.#data.join("\n") : null };
    this.#event = null;
    if (this.#data.length > 0) this.#data = [];
    return event;
  }

  /** A `field: value` line (from `start` to `end`, line break excluded); comments and other fields are skipped. */
  #field(buffer: Uint8Array, start: number, end: number): void {
    if (buffer[start] === COLON) return;
    let colon = buffer.indexOf(COLON, start);
    if (colon === -1 || colon > end) colon = end;
    const length = colon - start;
    const isData = length === 4 && buffer[start] === 100 && buffer[start + 1] === 97 &&
      buffer[start + 2] === 116 &&
      buffer[start + 3] === 97;
    const isEvent = !isData && length === 5 && buffer[start] === 101 && buffer[start + 1] === 118 &&
      buffer[start + 2] === 101 && buffer[start + 3] === 110 && buffer[start + 4] === 116;
    if (!isData && !isEvent) return;
    let from = colon < end ? colon + 1 : end;
    if (from < end && buffer[from] === SPACE) from++;
    const value = decoder.decode(buffer.subarray(from, end));
    if (isData) this.#data.push(value);
    else this.#event = value;
  }
}
