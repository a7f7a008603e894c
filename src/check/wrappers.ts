/**
 * Schemas around another one: `optional` (undefined passes), `withDefault` (undefined becomes the default, which is
 * not judged), `nullable` (null passes) and `preprocess` (a function first, the inner schema judges its result).
 */

import { isPlainObject, type Payload } from "./issue.ts";
import { type AnySchema, type OptIn, type Output, Schema } from "./schema.ts";

/** A wrapper's inner schema, for code that walks a schema tree (`config/legacy.ts`). */
export abstract class Wrapper<Out, Opt extends boolean> extends Schema<Out, Opt> {
  abstract readonly inner: AnySchema;
}

class Optional<S extends AnySchema> extends Wrapper<Output<S> | undefined, true> {
  readonly optout = "optional";

  constructor(readonly inner: S) {
    super();
  }

  get optin(): OptIn {
    return this.inner.optin === "defaulted" ? "defaulted" : "optional";
  }

  protected judge(payload: Payload): Payload {
    if (payload.value !== undefined) return this.inner.run(payload);
    if (this.inner.optin !== "defaulted") return payload;
    const result = this.inner.run({ value: undefined, issues: [] });
    payload.value = result.issues.length ? undefined : result.value;
    return payload;
  }
}

export function optional<S extends AnySchema>(inner: S): Wrapper<Output<S> | undefined, true> {
  return new Optional(inner);
}

/** Plain objects and lists are copied, nested ones too, so no parse shares a default (or a part of one) with another. */
function fresh<T>(value: T): T {
  if (Array.isArray(value)) return value.map(fresh) as T;
  if (isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, part]) => [key, fresh(part)])) as T;
  }
  return value;
}

class Default<S extends AnySchema> extends Wrapper<Output<S>, false> {
  readonly optin = "defaulted";
  readonly optout = undefined;

  constructor(readonly inner: S, private readonly fallback: Output<S>) {
    super();
  }

  protected judge(payload: Payload): Payload {
    if (payload.value === undefined) {
      payload.value = fresh(this.fallback);
      return payload;
    }
    const result = this.inner.run(payload);
    if (result.value === undefined) result.value = fresh(this.fallback);
    return result;
  }
}

export function withDefault<S extends AnySchema>(inner: S, fallback: Output<S>): Wrapper<Output<S>, false> {
  return new Default(inner, fallback);
}

class Nullable<S extends AnySchema> extends Wrapper<Output<S> | null, S["~opt"]> {
  constructor(readonly inner: S) {
    super();
  }

  get optin(): OptIn {
    return this.inner.optin;
  }

  get optout(): "optional" | undefined {
    return this.inner.optout;
  }

  protected judge(payload: Payload): Payload {
    return payload.value === null ? payload : this.inner.run(payload);
  }
}

export function nullable<S extends AnySchema>(inner: S): Wrapper<Output<S> | null, S["~opt"]> {
  return new Nullable(inner);
}

/** `fn` runs first (it never fails); `inner` judges what it returns. */
class Preprocess<S extends AnySchema> extends Wrapper<Output<S>, S["~opt"]> {
  readonly optin = "optional";

  constructor(private readonly fn: (value: unknown) => unknown, readonly inner: S) {
    super();
  }

  get optout(): "optional" | undefined {
    return this.inner.optout;
  }

  protected judge(payload: Payload): Payload {
    return this.inner.run({ value: this.fn(payload.value), issues: payload.issues });
  }
}

export function preprocess<S extends AnySchema>(
  fn: (value: unknown) => unknown,
  inner: S,
): Wrapper<Output<S>, S["~opt"]> {
  return new Preprocess(fn, inner);
}
