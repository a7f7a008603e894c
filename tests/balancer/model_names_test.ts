import assert from "node:assert/strict";
import { ModelNames } from "../../src/balancer/model_names.ts";
import type { GroupConfig } from "../../src/config/config.ts";
import { test } from "../_support/test.ts";

const group = (name: string, aliases: string[], listAliases = false): GroupConfig => ({
  name,
  endpoints: [],
  aliases,
  listAliases,
});

test("exact names first, then wildcards in file order; special characters are literal", () => {
  const names = new ModelNames([
    group("gpt-4o", ["gpt-4o-*", "latest"], true),
    group("gpt-4o-mini", ["gpt-4o-mini-*", "mini.v(1)"]),
    group("any", ["*"]),
  ]);
  assert.equal(names.resolve("gpt-4o")?.name, "gpt-4o");
  assert.equal(
    names.resolve("gpt-4o-mini")?.name,
    "gpt-4o-mini",
    "a group name wins over an earlier wildcard",
  );
  assert.equal(names.resolve("latest")?.name, "gpt-4o");
  assert.equal(names.resolve("gpt-4o-2024-08-06")?.name, "gpt-4o");
  assert.equal(names.resolve("gpt-4o-mini-2024-07-18")?.name, "gpt-4o", "the first wildcard in file order");
  assert.equal(names.resolve("mini.v(1)")?.name, "gpt-4o-mini");
  assert.equal(names.resolve("miniXv(1)")?.name, "any", "a dot is not a regex wildcard");
  assert.equal(names.resolve("line\nbreak")?.name, "any");
  assert.deepEqual(names.listed(), ["gpt-4o", "gpt-4o-mini", "any", "latest"]);
  assert.equal(new ModelNames([group("a", ["b-*"])]).resolve("c"), undefined);
});
