/**
 * What the schemas of the file (`schema.ts`, `limits.ts`, `keys/schema.ts`) share. They are built with the
 * proxy's own validator (`src/check/`), not zod: no schema library is loaded at start (issue 22.4a, idle memory).
 */

import { type AnySchema, type Output, preprocess, type Wrapper } from "../check/mod.ts";

/** A numeric string becomes a number (values from the environment are strings); the inner schema judges the rest. */
export function numeric<S extends AnySchema>(inner: S): Wrapper<Output<S>, S["~opt"]> {
  return preprocess(
    (v) => (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v),
    inner,
  );
}
