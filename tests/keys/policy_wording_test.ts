/**
 * What `POST /admin/keys` and `PATCH /admin/keys/{name}` tell a caller about each problem of a key policy: the
 * wording zod 4 gave (taken from main b790130, which still used zod), now written by `src/check/`. Each line here
 * is what the route puts after the field's name (`'rpm' Too small: ...`); tests/e2e/keys_admin_test.ts checks the
 * route's own framing. Bounds that include their limit (`>=`, `<=`), string lengths, unsafe integers, the received
 * type's name and the string forms a policy accepts are pinned here, not there.
 */

import assert from "node:assert/strict";
import { CreateKeySchema, PatchKeySchema } from "../../src/keys/schema.ts";
import { test } from "../_support/test.ts";

type Schema = typeof CreateKeySchema | typeof PatchKeySchema;

function problems(schema: Schema, body: unknown): string[] {
  const parsed = schema.safeParse(body);
  assert.equal(parsed.success, false, "refused");
  return parsed.error!.issues.map((issue) => `'${issue.path.join(".")}' ${issue.message}`);
}

const NAME_RULE = "must be 1-64 characters of letters, digits and . _ @ - (starting with a letter or digit)";

test("key policy problems read as zod worded them: lengths, inclusive bounds, unsafe integers", () => {
  assert.deepEqual(problems(CreateKeySchema, { name: "a", models: ["gpt", ""] }), [
    "'models.1' Too small: expected string to have >=1 characters",
  ]);
  assert.deepEqual(
    problems(CreateKeySchema, { name: "a", models: [], rpm: 1e300, tokens_per_day: 2.5, usd_per_month: 0 }),
    [
      "'models' must name at least one model group (leave it out for all of them)",
      "'rpm' Too big: expected int to be <=9007199254740991",
      "'tokens_per_day' Invalid input: expected int, received number",
      "'usd_per_month' Too small: expected number to be >0",
    ],
  );
  assert.deepEqual(problems(CreateKeySchema, { rpm: [1], tpm: {}, tokens_per_month: -9007199254740993 }), [
    "'name' Invalid input: expected string, received undefined",
    "'rpm' Invalid input: expected number, received array",
    "'tpm' Invalid input: expected number, received object",
    "'tokens_per_month' Too small: expected int to be >=-9007199254740991",
    "'tokens_per_month' Too small: expected number to be >0",
  ]);
});

test("key policy problems read as zod worded them: names, dates, options, unknown fields", () => {
  assert.deepEqual(
    problems(CreateKeySchema, {
      name: "a b",
      models: 5,
      max_parallel: "x",
      expires: "2027-13-01",
      cache: null,
    }),
    [
      `'name' ${NAME_RULE}`,
      "'models' Invalid input: expected array, received number",
      "'max_parallel' Invalid input: expected number, received string",
      "'expires' must be a date (YYYY-MM-DD) or an ISO 8601 date and time",
      `'cache' Invalid option: expected one of "shared"|"private"`,
    ],
  );
  assert.deepEqual(problems(CreateKeySchema, { name: "", expires: 5 }), [
    `'name' ${NAME_RULE}`,
    "'expires' Invalid input: expected string, received number",
  ]);
  assert.deepEqual(problems(PatchKeySchema, { rpm: null, name: "x" }), [`'' Unrecognized key: "name"`]);
  assert.deepEqual(problems(PatchKeySchema, { max_parallel: 0, expires: true, cache: 1 }), [
    "'max_parallel' Too small: expected number to be >0",
    "'expires' Invalid input: expected string, received boolean",
    `'cache' Invalid option: expected one of "shared"|"private"`,
  ]);
});

test("a patch takes null (remove the limit), numbers as text and models as one comma-separated string", () => {
  const parsed = PatchKeySchema.safeParse({ rpm: null, tpm: " 1e3 ", models: "a,,b ", expires: null });
  assert.equal(parsed.success, true);
  assert.deepEqual(parsed.data, { models: ["a", "b"], rpm: null, tpm: 1000, expires: null });
});
