/** `lineOf`: the line of a config path in the file as written, for messages (block YAML, one-line values). */

import assert from "node:assert/strict";
import { lineOf } from "../../src/config/line_of.ts";
import { test } from "../_support/test.ts";

const FILE = `# comment
model_groups:
  - model_group: g
    aliases: [a, b]
    models:
      - model: m
        weight: 1
      - model: n
        weight: -1
        params: { base_url: x, api_key: k }
  - model_group: h
    models:
    - model: o
      params:
        api_key: os.environ/NOPE
general_settings:
  bind_prot: 5000
  cache_params:
    ttl: 0
keys:
  - name: a
    models: [x]
`;

test("lineOf: keys, list items at either indentation, one-line values, and the deepest part found", () => {
  const cases: [PropertyKey[], number | undefined][] = [
    [["general_settings", "bind_prot"], 17],
    [["model_groups", 0, "models", 1, "weight"], 9],
    [["model_groups", 0, "models", 1, "params", "api_key"], 10],
    [["model_groups", 0, "aliases", 1], 4],
    [["model_groups", 1, "models", 0, "params", "api_key"], 15],
    [["model_groups", 1], 11],
    [["general_settings", "cache_params", "ttl"], 19],
    [["keys", 0, "models", 0], 22],
    // Not written (a missing key): where its holder is.
    [["keys", 0, "key"], 21],
    [["model_groups", 5], 2],
    [["nope"], undefined],
  ];
  for (const [path, line] of cases) assert.equal(lineOf(FILE, path), line, JSON.stringify(path));
});

test("lineOf: a file with CRLF line ends (read by js-yaml) gives the same lines", () => {
  const crlf = FILE.replaceAll("\n", "\r\n");
  assert.equal(lineOf(crlf, ["model_groups", 1, "models", 0, "params", "api_key"]), 15);
  assert.equal(lineOf(crlf, ["general_settings", "cache_params", "ttl"]), 19);
});
