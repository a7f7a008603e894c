/**
 * A mapping with a fixed set of keys, each with its schema; any other key is an `unrecognized_keys` issue. The
 * parsed object has the keys in the shape's order. An absent key: left out when its schema is optional, filled in
 * when it has a default, else the schema judges `undefined` (a required key's "is required").
 */

import { isObject, type Issue, type Payload, pushPrefixed } from "./issue.ts";
import { type AnySchema, type Output, Schema } from "./schema.ts";

export type Shape = Record<string, AnySchema>;

type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K]["~opt"] extends true ? K : never }[keyof S];
type Flat<T> = { [K in keyof T]: T[K] };

/** The parsed object of a shape: optional schemas' keys may be absent. */
export type ObjectOutput<S extends Shape> = Flat<
  & { -readonly [K in Exclude<keyof S, OptionalKeys<S>>]: Output<S[K]> }
  & { -readonly [K in OptionalKeys<S>]?: Output<S[K]> }
>;

export class StrictObject<S extends Shape> extends Schema<ObjectOutput<S>> {
  readonly optin = undefined;
  readonly optout = undefined;
  private readonly keys: string[];

  constructor(readonly shape: S) {
    super();
    this.keys = Object.keys(shape);
  }

  protected judge(payload: Payload): Payload {
    const input = payload.value;
    if (!isObject(input)) {
      payload.issues.push({ code: "invalid_type", expected: "object", input, path: [] });
      return payload;
    }
    const out: Record<string, unknown> = {};
    for (const key of this.keys) {
      if (key !== "__proto__") this.field(key, input, out, payload.issues);
    }
    const unknown: string[] = [];
    for (const key in input) {
      if (!Object.hasOwn(this.shape, key)) unknown.push(key);
    }
    if (unknown.length) {
      payload.issues.push({ code: "unrecognized_keys", keys: unknown, input, continue: true, path: [] });
    }
    payload.value = out;
    return payload;
  }

  /** One key of the shape: its issues, and its place in `out` (see the top of the file). */
  private field(key: string, input: Record<string, unknown>, out: Record<string, unknown>, issues: Issue[]) {
    const schema = this.shape[key];
    const result = schema.run({ value: input[key], issues: [] });
    const present = key in input;
    const failed = result.issues.length !== 0;
    if (schema.optin !== undefined && schema.optout === "optional") {
      if (failed && !present) return;
      pushPrefixed(issues, key, result.issues);
      if (schema.optin === "optional" ? present : result.value !== undefined || present) {
        out[key] = result.value;
      }
    } else if (schema.optin === undefined) {
      pushPrefixed(issues, key, result.issues);
      if (!present && !failed) issues.push({ code: "invalid_type", expected: "nonoptional", path: [key] });
      if (present) out[key] = result.value;
    } else {
      pushPrefixed(issues, key, result.issues);
      if (schema.optin === "defaulted" || result.value !== undefined || present) out[key] = result.value;
    }
  }
}

export function strictObject<S extends Shape>(shape: S): StrictObject<S> {
  return new StrictObject(shape);
}
