/**
 * Canonical JSON for cache keys, written straight into a reused byte buffer as UTF-8: object keys sorted at every
 * depth (by UTF-16 code units, as `Array.prototype.sort` orders them), members JSON leaves out left out, no
 * whitespace, otherwise as `JSON.stringify` writes it. The same bytes as the canonical text keys were hashed from
 * before (tests/_support/canonical_json.ts, itself checked against `safe-stable-stringify`), without building a
 * text (a string per member, joined, then copied into bytes: ~1.1 KB per request). ASCII strings with nothing to
 * escape, most of a request, are copied unit by unit; any other string is written as `JSON.stringify` quotes it.
 */

const encoder = new TextEncoder();
/** A buffer grown past this for one big body is dropped after its use, not kept. */
const KEEP_BYTES = 64 * 1024;

export class CanonicalBytes {
  bytes = new Uint8Array(4096);
  length = 0;

  /** Empties the buffer for the next text; one grown for a big body goes. */
  reset(): void {
    this.length = 0;
    if (this.bytes.length > KEEP_BYTES) this.bytes = new Uint8Array(4096);
  }

  /** Makes room for `more` bytes after `length`. */
  room(more: number): void {
    const needed = this.length + more;
    if (needed <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(needed, this.bytes.length * 2));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  /** Text known to be ASCII (punctuation, numbers, member names this module writes). */
  ascii(text: string): void {
    this.room(text.length);
    const { bytes } = this;
    let at = this.length;
    for (let i = 0; i < text.length; i++) bytes[at++] = text.charCodeAt(i);
    this.length = at;
  }

  /** `text` as a JSON string, quoted. */
  string(text: string): void {
    this.room(text.length + 2);
    const { bytes } = this;
    let at = this.length;
    bytes[at++] = 0x22;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      // Control characters, the quote, the backslash and anything not ASCII (surrogates included): the slow way.
      if (code < 0x20 || code === 0x22 || code === 0x5c || code > 0x7e) {
        return this.#encoded(JSON.stringify(text));
      }
      bytes[at++] = code;
    }
    bytes[at++] = 0x22;
    this.length = at;
  }

  /** `value` as canonical JSON; false when JSON has nothing to write for it (nothing written). */
  value(value: unknown): boolean {
    switch (typeof value) {
      case "string":
        this.string(value);
        return true;
      case "number":
        this.ascii(Number.isFinite(value) ? String(value) : "null");
        return true;
      case "boolean":
        this.ascii(value ? "true" : "false");
        return true;
      case "bigint":
        this.ascii(String(value));
        return true;
      case "object":
        if (value === null) this.ascii("null");
        else if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
          return this.value((value as { toJSON(): unknown }).toJSON());
        } else if (Array.isArray(value)) this.#array(value);
        else this.object(value as Record<string, unknown>);
        return true;
      default:
        return false;
    }
  }

  /** `object`'s members in sorted order, without those named in `omit`. */
  object(object: Readonly<Record<string, unknown>>, omit?: readonly string[]): void {
    const keys = Object.keys(object).sort();
    this.ascii("{");
    let first = true;
    for (const key of keys) {
      if (omit !== undefined && omit.includes(key)) continue;
      const before = this.length;
      if (!first) this.ascii(",");
      this.string(key);
      this.ascii(":");
      if (this.value(object[key])) first = false;
      else this.length = before; // a member JSON leaves out
    }
    this.ascii("}");
  }

  #array(items: readonly unknown[]): void {
    this.ascii("[");
    for (let i = 0; i < items.length; i++) {
      if (i > 0) this.ascii(",");
      if (!this.value(items[i])) this.ascii("null");
    }
    this.ascii("]");
  }

  #encoded(text: string): void {
    // A UTF-16 unit is at most 3 UTF-8 bytes.
    this.room(text.length * 3);
    this.length += encoder.encodeInto(text, this.bytes.subarray(this.length)).written;
  }
}
