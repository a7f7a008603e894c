/**
 * The schema (`src/check/`) of the top-level `keys:` list and `prices:` map of `llmproxy.yaml`, and of the policy the admin
 * routes accept (`POST /admin/keys`, `PATCH /admin/keys/{name}`). Values substituted from the environment are
 * strings, so numbers also accept their string forms, and `models` also one comma-separated string.
 */

import * as z from "../check/mod.ts";
import { numeric, stringList } from "../config/schema_parts.ts";
import { isoTime } from "../util/iso_time.ts";

const positiveCount = numeric(z.number().check(z.int(), z.positive()));
const usd = numeric(z.number().check(z.positive()));
const price = numeric(z.number().check(z.minimum(0)));

/** What usage, `/metrics` and `/stats` call a caller without a key (where the proxy lets one in): no key's name. */
export const ANONYMOUS = "anonymous";

/**
 * What usage, `/metrics` and `/stats` call a key named `anonymous` (one made before that name was refused): a
 * label no key name can be (a space, parentheses), so it never mixes with the callers without a key.
 */
export const ANONYMOUS_KEY = "anonymous (key)";

const keyNameText = z.string().check(
  z.regex(
    /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/,
    "must be 1-64 characters of letters, digits and . _ @ - (starting with a letter or digit)",
  ),
);

/**
 * A new key's name: what `/metrics`, `/stats`, usage and the admin routes call the key. Never the key itself; never
 * `anonymous` (a `keys:` entry of that name still loads, counted as `ANONYMOUS_KEY`, with a warning).
 */
export const keyName = keyNameText.check(
  z.refine(
    (name: string) => name !== ANONYMOUS,
    `must not be '${ANONYMOUS}': usage names the callers without a key so`,
  ),
);

/**
 * Model group patterns: a name, or `*` wildcards (`gpt-4o*`, `*`). An empty list is refused: it reads as "no
 * model" as much as "every model", and the key would be either useless or open; leaving `models` out (`null` in a
 * PATCH) is what means every group.
 */
const models = stringList().check(z.refine(
  (list: readonly string[]) => list.length > 0,
  "must name at least one model group (leave it out for all of them)",
));

/** `YYYY-MM-DD` (the key stops working at 00:00 UTC that day) or an ISO 8601 date and time. */
const expires = z.preprocess(
  (v) => (v instanceof Date ? isoTime(v.getTime()) : v),
  z.string().check(z.refine(
    (s) =>
      /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(s) && Number.isFinite(Date.parse(s)) &&
      realDay(s),
    "must be a date (YYYY-MM-DD) or an ISO 8601 date and time",
  )),
);

/** The `YYYY-MM-DD` part names a day of the calendar (`Date.parse` rolls `2030-02-30` over to March 2). */
function realDay(s: string): boolean {
  const [year, month, day] = [+s.slice(0, 4), +s.slice(5, 7), +s.slice(8, 10)];
  return new Date(Date.UTC(year, month - 1, day)).getUTCDate() === day;
}

/** The policy fields of a key, shared by the config file and the admin routes. */
export const policyShape = {
  models: z.optional(models),
  rpm: z.optional(positiveCount),
  tpm: z.optional(positiveCount),
  max_parallel: z.optional(positiveCount),
  tokens_per_day: z.optional(positiveCount),
  tokens_per_month: z.optional(positiveCount),
  usd_per_month: z.optional(usd),
  expires: z.optional(expires),
  cache: z.optional(z.oneOf(["shared", "private"])),
};

/** One entry of `keys:`. Exactly one of `key` (best as `os.environ/NAME`) and `key_sha256` is given. */
export const KeyEntrySchema = z.strictObject({
  name: keyNameText,
  key: z.optional(z.string().check(z.minLength(1))),
  key_sha256: z.optional(
    z.string().check(z.regex(/^[0-9a-fA-F]{64}$/, "must be 64 hexadecimal digits (a SHA-256)")),
  ),
  ...policyShape,
});

/** USD per million tokens; `cached_input` defaults to `input`. */
export const PriceSchema = z.strictObject({
  input: price,
  cached_input: z.optional(price),
  output: price,
});

export const KeysSchema = z.preprocess((v) => (v === null ? [] : v), z.array(KeyEntrySchema));
export const PricesSchema = z.preprocess(
  (v) => (v === null ? {} : v),
  z.record(z.string().check(z.minLength(1)), PriceSchema),
);

/** `POST /admin/keys`: a name and a policy; the key is generated. */
export const CreateKeySchema = z.strictObject({ name: keyName, ...policyShape });

/** `PATCH /admin/keys/{name}`: the fields to change; `null` removes a limit (or the expiry). */
export const PatchKeySchema = z.strictObject(
  Object.fromEntries(Object.entries(policyShape).map(([field, schema]) => [field, z.nullable(schema)])) as {
    [K in keyof typeof policyShape]: z.Wrapper<z.Output<(typeof policyShape)[K]> | null, true>;
  },
);

export type KeyEntry = z.Output<typeof KeyEntrySchema>;
export type PolicyFields = z.ObjectOutput<typeof policyShape>;
export type PriceEntry = z.Output<typeof PriceSchema>;

export const KEY_FIELDS = Object.keys(KeyEntrySchema.shape);
