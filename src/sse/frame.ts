/**
 * Cuts a byte stream at SSE event boundaries, so a pass-through forwards whole events only. An upstream that dies
 * mid-event then leaves nothing half-sent, and the error event the proxy appends parses cleanly. Chunks that end on
 * a boundary (the usual case: upstreams write one event per chunk) pass through without a copy.
 */

const LF = 10;
const CR = 13;

/** Index just past the last event boundary (`\n\n`, `\r\n\r\n`, `\r\r`) in `bytes`, or 0 when there is none. */
export function lastBoundary(bytes: Uint8Array): number {
  for (let i = bytes.length - 1; i >= 1; i--) {
    const byte = bytes[i];
    if (byte === LF) {
      const before = bytes[i - 1];
      if (before === LF || (before === CR && i >= 2 && bytes[i - 2] === LF)) return i + 1;
    } else if (byte === CR && bytes[i - 1] === CR) {
      return i + 1;
    }
  }
  return 0;
}

export class EventFramer {
  #carry: Uint8Array | undefined;

  /** Feeds bytes; returns the complete events they finish (undefined when none is complete yet). */
  push(chunk: Uint8Array): Uint8Array | undefined {
    let bytes = chunk;
    if (this.#carry) {
      bytes = new Uint8Array(this.#carry.length + chunk.length);
      bytes.set(this.#carry);
      bytes.set(chunk, this.#carry.length);
      this.#carry = undefined;
    }
    const last = bytes.length;
    if (last >= 2 && bytes[last - 1] === LF && bytes[last - 2] === LF) return bytes;
    const end = lastBoundary(bytes);
    if (end < bytes.length) this.#carry = bytes.slice(end);
    return end > 0 ? bytes.subarray(0, end) : undefined;
  }

  /** Bytes after the last boundary, for an upstream that ended without a final blank line. */
  rest(): Uint8Array | undefined {
    const rest = this.#carry;
    this.#carry = undefined;
    return rest;
  }
}
