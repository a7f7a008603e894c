/**
 * Canonical JSON as text, the reference the cache key's bytes (src/cache/canonical_bytes.ts) are checked against:
 * object keys sorted at every depth (by UTF-16 code units, as `Array.prototype.sort`
 * orders them), members whose value is undefined, a function or a symbol left out, no whitespace; otherwise as
 * `JSON.stringify` writes it. For parsed JSON it is byte for byte what `safe-stable-stringify` wrote before it
 * (`tests/cache/canonical_json_test.ts` checks that), so cache keys did not change.
 */

/** `value` as canonical JSON; "null" where JSON has nothing to write (undefined at the top). */
export function canonicalJson(value: unknown): string {
  return write(value) ?? "null";
}

function write(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
      return quote(value);
    case "number":
      return Number.isFinite(value) ? String(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return String(value);
    case "object":
      if (value === null) return "null";
      if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
        return write((value as { toJSON(): unknown }).toJSON());
      }
      return Array.isArray(value) ? writeArray(value) : writeObject(value as Record<string, unknown>);
    default:
      return undefined;
  }
}

function writeArray(items: readonly unknown[]): string {
  let out = "[";
  for (let i = 0; i < items.length; i++) out += (i === 0 ? "" : ",") + (write(items[i]) ?? "null");
  return out + "]";
}

/**
 * `object` as canonical JSON without its members named in `omit`: what `canonicalJson` writes for a copy of it
 * without them, with no copy made.
 */
export function canonicalObject(
  object: Readonly<Record<string, unknown>>,
  omit: readonly string[] = [],
): string {
  return writeObject(object, omit);
}

function writeObject(object: Readonly<Record<string, unknown>>, omit?: readonly string[]): string {
  const keys = Object.keys(object).sort();
  let out = "{";
  for (const key of keys) {
    if (omit !== undefined && omit.includes(key)) continue;
    const text = write(object[key]);
    if (text === undefined) continue;
    out += (out.length === 1 ? "" : ",") + quote(key) + ":" + text;
  }
  return out + "}";
}

/** Characters `JSON.stringify` escapes (lone surrogates included); other strings are quoted as they are. */
// deno-lint-ignore no-control-regex -- the control characters are what JSON escapes
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

export function quote(text: string): string {
  return text.length < 5000 && !NEEDS_ESCAPE.test(text) ? `"${text}"` : JSON.stringify(text);
}
