/**
 * What the zod/mini schemas (`schema.ts`, `limits.ts`, `keys/schema.ts`) share. zod/mini, not classic zod: a bundle
 * keeps only the parts used, about 8 MiB less resident memory (bench/RESULTS.md, session 7). It sets no locale of
 * its own, so English is set here (as classic zod does), before any schema parses: the admin routes show zod's
 * messages (`'rpm' Too small: expected number to be >0`) and the config's messages fall back to them.
 */

import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";

z.config(en());

/** Classic zod's `z.preprocess`: `fn` runs first, `inner` judges its result. */
export function preprocess<T extends z.ZodMiniType>(fn: (value: unknown) => unknown, inner: T) {
  return z.pipe(z.transform(fn), inner);
}
