/**
 * What a failed check reports, in the shapes zod 4 used (the config's messages and the admin routes read them):
 * `code`, `path` and the fields of that code. `message` is set once a parse ends (`english.ts`).
 */

/** Where in the input a problem is: keys and list indexes, outermost first. */
export type IssuePath = PropertyKey[];

interface Base {
  path: IssuePath;
  /** The value judged (for the English message's "received"); dropped when the parse ends. */
  input?: unknown;
  /** `true`: later checks of the same value still run; otherwise the value is judged done (zod's `continue`). */
  continue?: boolean;
  message?: string;
}

export type Issue =
  | Base & { code: "invalid_type"; expected: string }
  | Base & { code: "too_small"; origin: string; minimum: number; inclusive: boolean }
  | Base & { code: "too_big"; origin: string; maximum: number; inclusive: boolean }
  | Base & { code: "invalid_value"; values: readonly unknown[] }
  | Base & { code: "invalid_format"; origin: "string"; format: "regex"; pattern: string }
  | Base & { code: "unrecognized_keys"; keys: string[] }
  | Base & { code: "invalid_key"; origin: "record" }
  | Base & { code: "custom" };

/** An issue after a parse: its message is always there. */
export type FinalIssue = Issue & { message: string };

/** One value on its way through a schema, and what was found wrong with it so far. */
export interface Payload {
  value: unknown;
  issues: Issue[];
}

/** Whether an issue from `start` on stops later checks of the value (any issue not marked `continue`). */
export function aborted(payload: Payload, start = 0): boolean {
  for (let i = start; i < payload.issues.length; i++) {
    if (payload.issues[i].continue !== true) return true;
  }
  return false;
}

/** Whether an issue explicitly stopped the value (`continue: false`): even checks with their own `when` skip. */
export function explicitlyAborted(payload: Payload): boolean {
  return payload.issues.some((issue) => issue.continue === false);
}

/** The issues of a part of the value, their paths prefixed with the part's key or index. */
export function pushPrefixed(into: Issue[], key: PropertyKey, issues: readonly Issue[]): void {
  for (const issue of issues) {
    issue.path.unshift(key);
    into.push(issue);
  }
}

/** A mapping as a schema sees one: an object that is not a list. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A plain mapping (made by `{}`, a parser, or with no prototype); a list or a class instance is not one. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (!isObject(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
