/**
 * The base of every schema: parse the value (type, parts), then run the checks added with `.check()` in order.
 * A check without a `when` is skipped once the value has an issue that stops it; one with a `when` (lengths) runs
 * whenever its `when` says so, unless an issue explicitly stopped the value. `Out` is the parsed value's type,
 * `Opt` whether an object leaves the key out when it is absent (`optional`).
 */

import { englishMessage } from "./english.ts";
import { aborted, explicitlyAborted, type FinalIssue, type Payload } from "./issue.ts";

/** One check of a parsed value: pushes its issues onto the payload. `T` is the value type it accepts. */
export interface Check<T> {
  readonly when?: (payload: Payload) => boolean;
  readonly run: (payload: Payload) => void;
  /** Type only: what the check accepts. */
  readonly "~in"?: (value: T) => void;
}

export type ParseResult<Out> =
  | { success: true; data: Out; error?: undefined }
  | { success: false; data?: undefined; error: { issues: FinalIssue[] } };

/** How an object treats its key when absent: `optional` leaves it out, `defaulted` fills it in. */
export type OptIn = "optional" | "defaulted" | undefined;

export abstract class Schema<Out, Opt extends boolean = false> {
  /** Type only: the parsed value. */
  declare readonly "~out": Out;
  /** Type only: whether an object may leave this key out. */
  declare readonly "~opt": Opt;
  checks: readonly Check<never>[] = [];

  /** How an enclosing object treats this key when it is absent (zod's `optin`). */
  abstract readonly optin: OptIn;
  /** `optional`: the parsed value may be undefined, so an object may leave the key out (zod's `optout`). */
  abstract readonly optout: "optional" | undefined;

  /** The type and parts of the value, without the checks. */
  protected abstract judge(payload: Payload): Payload;

  run(payload: Payload): Payload {
    const result = this.judge(payload);
    return this.checks.length === 0 ? result : runChecks(result, this.checks);
  }

  /** A copy of this schema with `checks` run after its own. */
  check(...checks: Check<Out>[]): this {
    const copy: this = Object.assign(Object.create(Object.getPrototypeOf(this)), this);
    copy.checks = [...this.checks, ...checks];
    return copy;
  }

  safeParse(input: unknown): ParseResult<Out> {
    const result = this.run({ value: input, issues: [] });
    if (result.issues.length === 0) return { success: true, data: result.value as Out };
    const issues = result.issues.map((issue): FinalIssue => {
      const message = issue.message ?? englishMessage(issue);
      delete issue.input;
      delete issue.continue;
      return Object.assign(issue, { message });
    });
    return { success: false, error: { issues } };
  }

  /** The parsed value; throws on any issue (for values known to be valid, such as defaults). */
  parse(input: unknown): Out {
    const result = this.safeParse(input);
    if (!result.success) throw new TypeError(result.error.issues.map((issue) => issue.message).join("; "));
    return result.data;
  }
}

function runChecks(payload: Payload, checks: readonly Check<never>[]): Payload {
  let stopped = aborted(payload);
  for (const check of checks) {
    if (check.when) {
      if (explicitlyAborted(payload) || !check.when(payload)) continue;
    } else if (stopped) continue;
    const before = payload.issues.length;
    check.run(payload);
    if (!stopped && payload.issues.length !== before) stopped = aborted(payload, before);
  }
  return payload;
}

/** Any schema, whatever it parses to. */
export type AnySchema = Schema<unknown, boolean>;

/** The parsed value of schema `S`. */
export type Output<S> = S extends Schema<infer O, boolean> ? O : never;
