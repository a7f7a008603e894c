/**
 * What the schemas of the file (`schema.ts`, `limits.ts`, `keys/schema.ts`) share. They are built with the
 * proxy's own validator (`src/check/`), not zod: no schema library is loaded at start (issue 22.4a, idle memory).
 */

import {
  type AnySchema,
  array,
  minLength,
  type Output,
  preprocess,
  string,
  type StringSchema,
  type Wrapper,
} from "../check/mod.ts";

/** A number in decimal digits: `12`, `-1.5`, `2e3`; not `0x10`, `0b1`, `Infinity` (which `Number` also reads). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * A string of a decimal number becomes that number (values from the environment are strings); the inner schema
 * judges the rest, so any other string (`"0x10"`) is refused as not a number.
 */
export function numeric<S extends AnySchema>(inner: S): Wrapper<Output<S>, S["~opt"]> {
  return preprocess((v) => (typeof v === "string" && DECIMAL.test(v.trim()) ? Number(v) : v), inner);
}

/** A string that `Number` reads but `numeric` refuses: its message says what is wanted instead. */
export const nonDecimal = (value: unknown): boolean =>
  typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value)) &&
  !DECIMAL.test(value.trim());

/** A list of strings, also given as one comma-separated string (what an env reference produces). */
export function stringList(item: StringSchema = string().check(minLength(1))) {
  return preprocess(
    (v) => (typeof v === "string" ? v.split(",").map((s) => s.trim()).filter((s) => s !== "") : v),
    array(item),
  );
}
