/**
 * Cuts a byte stream at SSE event boundaries (found by the one scanner, `scanner.ts`), so a pass-through forwards
 * whole events only. An upstream that dies mid-event then leaves nothing half-sent, and the error event the proxy
 * appends parses cleanly. Chunks that end on a boundary (the usual case: upstreams write one event per chunk) pass
 * through without a copy, and one that ends in a blank line while no event is open is not even scanned.
 */

import { SseScanner } from "./scanner.ts";

const LF = 10;

export class EventFramer {
  readonly #scanner = new SseScanner({ fields: false });

  /** Feeds bytes; returns the complete events they finish (undefined when none is complete yet). */
  push(chunk: Uint8Array): Uint8Array | undefined {
    const last = chunk.length;
    if (this.#scanner.idle && last >= 2 && chunk[last - 1] === LF && chunk[last - 2] === LF) return chunk;
    const events = this.#scanner.push(chunk);
    if (events.length === 0) return undefined;
    const first = events[0].raw;
    const end = events[events.length - 1].raw;
    const length = end.byteOffset + end.byteLength - first.byteOffset;
    if (first.buffer === chunk.buffer && first.byteOffset === chunk.byteOffset && length === chunk.length) {
      return chunk;
    }
    // The events of one push are consecutive views of one buffer: one view covers them all.
    return new Uint8Array(first.buffer, first.byteOffset, length);
  }

  /** Bytes after the last boundary, for an upstream that ended without a final blank line. */
  rest(): Uint8Array | undefined {
    const { events, rest } = this.#scanner.end();
    return events[0]?.raw ?? rest;
  }
}
