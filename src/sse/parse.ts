/**
 * Incremental server-sent-events parsing for code that watches a stream it passes through (it never changes the
 * bytes). Handles events and line breaks (`\n`, `\r\n`, `\r`) split anywhere across chunks, and multi-byte UTF-8
 * characters split across chunks.
 */

export interface SseEvent {
  /** The `event:` field, or null when absent. */
  readonly event: string | null;
  /** The joined `data:` lines. */
  readonly data: string;
}

export class SseParser {
  readonly #decoder = new TextDecoder();
  #buffer = "";
  #event: string | null = null;
  #data: string[] = [];
  /** A `\r` ended the previous chunk: a `\n` starting the next one belongs to the same line break. */
  #pendingCr = false;

  /** Feeds bytes; returns the events completed by them. */
  push(chunk: Uint8Array): SseEvent[] {
    let text = this.#decoder.decode(chunk, { stream: true });
    if (this.#pendingCr && text.startsWith("\n")) text = text.slice(1);
    this.#pendingCr = false;
    this.#buffer += text;
    const events: SseEvent[] = [];
    let start = 0;
    const buffer = this.#buffer;
    for (let i = 0; i < buffer.length; i++) {
      const char = buffer.charCodeAt(i);
      if (char !== 10 && char !== 13) continue;
      const line = buffer.slice(start, i);
      if (char === 13) {
        if (i + 1 < buffer.length) {
          if (buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          this.#pendingCr = true;
        }
      }
      start = i + 1;
      const event = this.#line(line);
      if (event) events.push(event);
    }
    this.#buffer = buffer.slice(start);
    return events;
  }

  #line(line: string): SseEvent | undefined {
    if (line === "") {
      if (this.#data.length === 0 && this.#event === null) return undefined;
      const event = { event: this.#event, data: this.#data.join("\n") };
      this.#event = null;
      this.#data = [];
      return event;
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.#data.push(value);
    else if (field === "event") this.#event = value;
    return undefined;
  }
}
