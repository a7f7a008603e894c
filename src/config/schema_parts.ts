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

/** A numeric string becomes a number (values from the environment are strings); the inner schema judges the rest. */
export function numeric<S extends AnySchema>(inner: S): Wrapper<Output<S>, S["~opt"]> {
  return preprocess(
    (v) => (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v),
    inner,
  );
}

/** A list of strings, also given as one comma-separated string (what an env reference produces). */
export function stringList(item: StringSchema = string().check(minLength(1))) {
  return preprocess(
    (v) => (typeof v === "string" ? v.split(",").map((s) => s.trim()).filter((s) => s !== "") : v),
    array(item),
  );
}
