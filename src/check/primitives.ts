/** The leaf schemas: a string, a finite number, a boolean, one of a fixed list of strings. */

import type { Payload } from "./issue.ts";
import { Schema } from "./schema.ts";

/** A leaf: the value passes as is when `accepts` says so, else one `invalid_type` issue naming `expected`. */
class Leaf<Out> extends Schema<Out> {
  readonly optin = undefined;
  readonly optout = undefined;

  constructor(readonly expected: string, private readonly accepts: (value: unknown) => boolean) {
    super();
  }

  protected judge(payload: Payload): Payload {
    if (!this.accepts(payload.value)) {
      payload.issues.push({ code: "invalid_type", expected: this.expected, input: payload.value, path: [] });
    }
    return payload;
  }
}

export type StringSchema = Schema<string>;

export function string(): StringSchema {
  return new Leaf<string>("string", (value) => typeof value === "string");
}

/** A number, not NaN and not infinite. */
export function number(): Schema<number> {
  return new Leaf<number>("number", (value) => typeof value === "number" && Number.isFinite(value));
}

export function boolean(): Schema<boolean> {
  return new Leaf<boolean>("boolean", (value) => typeof value === "boolean");
}

/** One of `values`; anything else is an `invalid_value` issue listing them. */
class OneOf<const T extends string> extends Schema<T> {
  readonly optin = undefined;
  readonly optout = undefined;

  constructor(readonly values: readonly T[]) {
    super();
  }

  protected judge(payload: Payload): Payload {
    if (!(this.values as readonly unknown[]).includes(payload.value)) {
      payload.issues.push({ code: "invalid_value", values: this.values, input: payload.value, path: [] });
    }
    return payload;
  }
}

export function oneOf<const T extends string>(values: readonly T[]): Schema<T> {
  return new OneOf(values);
}
