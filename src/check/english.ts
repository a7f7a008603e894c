/**
 * zod 4's English message of an issue that carries no message of its own: the admin routes show these to callers
 * (`'rpm' Too small: expected number to be >0`), so the wording is kept as zod wrote it.
 */

import type { Issue } from "./issue.ts";

const SIZED: Record<string, string> = { string: "characters", array: "items" };

/** What zod called the type of a value: `number`, `NaN`, `Infinity`, `array`, `null`, `Date`, ... */
function received(input: unknown): string {
  if (typeof input === "number") {
    return Number.isNaN(input) ? "NaN" : Number.isFinite(input) ? "number" : String(input);
  }
  if (typeof input !== "object") return typeof input;
  if (input === null) return "null";
  if (Array.isArray(input)) return "array";
  if (Object.getPrototypeOf(input) !== Object.prototype && "constructor" in input && input.constructor) {
    return (input.constructor as { name: string }).name;
  }
  return "object";
}

function quoted(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  return typeof value === "string" ? `"${value}"` : `${value}`;
}

export function englishMessage(issue: Issue): string {
  switch (issue.code) {
    case "invalid_type":
      return `Invalid input: expected ${issue.expected === "nan" ? "NaN" : issue.expected}, received ${
        received(issue.input)
      }`;
    case "invalid_value":
      return issue.values.length === 1
        ? `Invalid input: expected ${quoted(issue.values[0])}`
        : `Invalid option: expected one of ${issue.values.map(quoted).join("|")}`;
    case "too_big":
    case "too_small": {
      const big = issue.code === "too_big";
      const bound = `${big ? (issue.inclusive ? "<=" : "<") : (issue.inclusive ? ">=" : ">")}${
        big ? issue.maximum : issue.minimum
      }`;
      const unit = SIZED[issue.origin];
      const head = `Too ${big ? "big" : "small"}: expected ${issue.origin}`;
      return unit ? `${head} to have ${bound} ${unit}` : `${head} to be ${bound}`;
    }
    case "invalid_format":
      return `Invalid string: must match pattern ${issue.pattern}`;
    case "unrecognized_keys":
      return `Unrecognized key${issue.keys.length > 1 ? "s" : ""}: ${issue.keys.map(quoted).join(", ")}`;
    case "invalid_key":
      return `Invalid key in ${issue.origin}`;
    default:
      return "Invalid input";
  }
}
