/** Lists of one schema, and records: mappings whose keys and values each have a schema. */

import { isPlainObject, type Payload, pushPrefixed } from "./issue.ts";
import { type AnySchema, type Output, Schema } from "./schema.ts";

export class ArrayOf<S extends AnySchema> extends Schema<Output<S>[]> {
  readonly optin = undefined;
  readonly optout = undefined;

  constructor(readonly element: S) {
    super();
  }

  protected judge(payload: Payload): Payload {
    const input = payload.value;
    if (!Array.isArray(input)) {
      payload.issues.push({ code: "invalid_type", expected: "array", input, path: [] });
      return payload;
    }
    const out: unknown[] = Array(input.length);
    for (let i = 0; i < input.length; i++) {
      const result = this.element.run({ value: input[i], issues: [] });
      pushPrefixed(payload.issues, i, result.issues);
      out[i] = result.value;
    }
    payload.value = out;
    return payload;
  }
}

export function array<S extends AnySchema>(element: S): ArrayOf<S> {
  return new ArrayOf(element);
}

class RecordOf<K extends Schema<string>, V extends AnySchema> extends Schema<Record<Output<K>, Output<V>>> {
  readonly optin = undefined;
  readonly optout = undefined;

  constructor(readonly keyType: K, readonly valueType: V) {
    super();
  }

  protected judge(payload: Payload): Payload {
    const input = payload.value;
    if (!isPlainObject(input)) {
      payload.issues.push({ code: "invalid_type", expected: "record", input, path: [] });
      return payload;
    }
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(input)) {
      if (key === "__proto__") continue;
      if (this.keyType.run({ value: key, issues: [] }).issues.length) {
        payload.issues.push({ code: "invalid_key", origin: "record", input: key, path: [key] });
        continue;
      }
      const result = this.valueType.run({ value: input[key], issues: [] });
      pushPrefixed(payload.issues, key, result.issues);
      out[key] = result.value;
    }
    payload.value = out;
    return payload;
  }
}

export function record<K extends Schema<string>, V extends AnySchema>(
  keyType: K,
  valueType: V,
): Schema<Record<Output<K>, Output<V>>> {
  return new RecordOf(keyType, valueType);
}
