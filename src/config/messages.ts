/**
 * One readable line per schema problem, naming the path and the value that was wrong:
 * `model_groups[0].models[1].weight must be >= 0, got -1`. Secret values never appear.
 */

import type { FinalIssue } from "../check/mod.ts";
import { KNOWN_KEYS } from "./schema.ts";
import { nonDecimal } from "./schema_parts.ts";
import { PriceSchema } from "../keys/schema.ts";

const PRICE_FIELDS = Object.keys(PriceSchema.shape);

export type Path = readonly PropertyKey[];

export function formatPath(path: Path): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(String(part))) out += out === "" ? String(part) : `.${String(part)}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

/**
 * A problem found after the schema (a duplicate name, a missing key), about one place in the file: its `path`,
 * which gives it its line, and its message, which names that path first (`keys[2].models[0] must match ...`).
 */
export interface Problem {
  readonly path: Path;
  readonly message: string;
}

/** The problem at `path`, its message the path written out and then `rest` (` must be unique, got ...`). */
export function problemAt(path: Path, rest: string): Problem {
  return { path, message: `${formatPath(path)}${rest}` };
}

const SECRET_SEGMENT = /key|password|secret|token|auth|redis_url/i;
/** Maps whose values may be secrets whatever their names (a cookie, a custom auth header, a signed query). */
const SECRET_MAPS = new Set(["headers", "default_headers", "default_query"]);

function formatValue(value: unknown, path: Path): string {
  if (path.some((part) => typeof part === "string" && SECRET_SEGMENT.test(part))) return "<redacted>";
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (path.some((part) => typeof part === "string" && SECRET_MAPS.has(part))) return "<redacted>";
  if (typeof value !== "string") return String(value);
  // URL credentials and query strings may carry secrets too.
  const shown = value.replace(/\/\/[^/@\s]*@/, "//<redacted>@").replace(/\?.*$/, "?<redacted>").replace(
    /#.*$/,
    "#<redacted>",
  );
  return JSON.stringify(shown.length > 80 ? `${shown.slice(0, 77)}...` : shown);
}

function valueAt(tree: unknown, path: Path): unknown {
  let node = tree;
  for (const part of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}

const EXPECTED: Record<string, string> = {
  number: "a number",
  int: "an integer",
  string: "a string",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
  record: "a mapping",
};

export function describeIssue(issue: FinalIssue, tree: unknown): string[] {
  const path = formatPath(issue.path);
  const value = valueAt(tree, issue.path);
  const got = `got ${formatValue(value, issue.path)}`;
  const subject = path === "" ? "the file" : path;
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) =>
        `${formatPath([...issue.path, key])} is not a known key${suggest(key, issue.path)}`
      );
    case "invalid_type":
      if (value === undefined) return [`${subject} is required`];
      if (nonDecimal(value)) return [`${subject} must be a number in decimal digits, ${got}`];
      return [`${subject} must be ${EXPECTED[issue.expected] ?? issue.expected}, ${got}`];
    case "too_small": {
      const min = Number(issue.minimum);
      if (issue.origin === "array") {
        return [`${subject} must have at least ${min} entr${min === 1 ? "y" : "ies"}`];
      }
      if (issue.origin === "string") return [`${subject} must not be empty`];
      return [`${subject} must be ${issue.inclusive ? ">=" : ">"} ${min}, ${got}`];
    }
    case "too_big":
      return [`${subject} must be ${issue.inclusive ? "<=" : "<"} ${Number(issue.maximum)}, ${got}`];
    case "invalid_value":
      return [`${subject} must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, ${got}`];
    default:
      return [`${subject} ${issue.message}, ${got}`];
  }
}

/** ` (did you mean 'bind_port'?)` when a known key of that mapping is close to the typo. */
function suggest(key: string, at: Path): string {
  const last = at.at(-1);
  // A price is held by its model's name: `prices.gpt-4o.ouput`.
  const holder = at.length === 0
    ? "top"
    : at.length === 2 && at[0] === "prices"
    ? "prices"
    : String(typeof last === "number" ? at.at(-2) : last);
  const known: readonly string[] = holder === "prices"
    ? PRICE_FIELDS
    : KNOWN_KEYS[holder as keyof typeof KNOWN_KEYS] ?? [];
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best ? ` (did you mean '${best}'?)` : "";
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}
