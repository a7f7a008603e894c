/**
 * The checks `.check()` takes: lengths, patterns, integers, bounds and refinements. Each failure is an issue that
 * lets the value's later checks still run, except `int` on a fraction (a bound is meaningless then).
 */

import type { Issue, Payload } from "./issue.ts";
import type { Check } from "./schema.ts";

/** At least `minimum` characters (code points) of a string, or entries of a list. */
export function minLength(minimum: number): Check<string | readonly unknown[]> {
  return {
    // Runs on anything with a length, even after the type failed (zod's rule): `[]` as a string is "too small" too.
    when: (payload) => {
      const value = payload.value as { length?: unknown } | null | undefined;
      return value !== null && value !== undefined && value.length !== undefined;
    },
    run: (payload) => {
      const value = payload.value as string | readonly unknown[];
      const length = typeof value === "string" ? [...value].length : value.length;
      if (length >= minimum) return;
      const origin = Array.isArray(value) ? "array" : typeof value === "string" ? "string" : "unknown";
      payload.issues.push({
        code: "too_small",
        origin,
        minimum,
        inclusive: true,
        input: value,
        continue: true,
        path: [],
      });
    },
  };
}

/** A string matching `pattern`; `message` replaces the English one. */
export function regex(pattern: RegExp, message?: string): Check<string> {
  return {
    run: (payload) => {
      pattern.lastIndex = 0;
      if (pattern.test(payload.value as string)) return;
      payload.issues.push({
        code: "invalid_format",
        origin: "string",
        format: "regex",
        pattern: pattern.toString(),
        input: payload.value,
        continue: true,
        path: [],
        ...(message === undefined ? {} : { message }),
      });
    },
  };
}

/** A safe integer: a fraction is an `invalid_type` (expected `int`) that stops later checks. */
export function int(): Check<number> {
  return {
    run: (payload) => {
      const value = payload.value as number;
      if (!Number.isInteger(value)) {
        payload.issues.push({
          code: "invalid_type",
          expected: "int",
          input: value,
          continue: false,
          path: [],
        });
      } else if (!Number.isSafeInteger(value)) {
        const at = { origin: "int", inclusive: true, input: value, continue: true, path: [] };
        payload.issues.push(
          value > 0
            ? { code: "too_big", maximum: Number.MAX_SAFE_INTEGER, ...at }
            : { code: "too_small", minimum: Number.MIN_SAFE_INTEGER, ...at },
        );
      }
    },
  };
}

function bound(code: "too_small" | "too_big", limit: number, inclusive: boolean): Check<number> {
  return {
    run: (payload) => {
      const value = payload.value as number;
      const ok = code === "too_small"
        ? (inclusive ? value >= limit : value > limit)
        : (inclusive ? value <= limit : value < limit);
      if (ok) return;
      const at = { origin: "number", inclusive, input: value, continue: true, path: [] };
      payload.issues.push(
        code === "too_small" ? { code, minimum: limit, ...at } : { code, maximum: limit, ...at },
      );
    },
  };
}

/** `>= limit`. */
export const minimum = (limit: number): Check<number> => bound("too_small", limit, true);
/** `<= limit`. */
export const maximum = (limit: number): Check<number> => bound("too_big", limit, true);
/** `> 0`. */
export const positive = (): Check<number> => bound("too_small", 0, false);

/** A `custom` issue with `message` when `fn` returns false. */
export function refine<T>(fn: (value: T) => boolean, message: string): Check<T> {
  return {
    run: (payload) => {
      if (fn(payload.value as T)) return;
      payload.issues.push({ code: "custom", message, input: payload.value, continue: true, path: [] });
    },
  };
}

/** What `superRefine`'s function gets to report with. */
export interface RefineContext {
  addIssue(issue: { code: "custom"; message: string }): void;
}

/** `fn` reports any number of `custom` issues through its context. */
export function superRefine<T>(fn: (value: T, ctx: RefineContext) => void): Check<T> {
  return {
    run: (payload: Payload) => {
      const ctx: RefineContext = {
        addIssue: ({ message }) => {
          const issue: Issue = { code: "custom", message, input: payload.value, continue: true, path: [] };
          payload.issues.push(issue);
        },
      };
      fn(payload.value as T, ctx);
    },
  };
}
