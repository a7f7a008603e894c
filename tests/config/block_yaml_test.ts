import assert from "node:assert/strict";
import { configYaml } from "../../bench/proxy_config.ts";
import { readBlockYaml } from "../../src/config/block_yaml.ts";
import { parseYaml } from "../../src/config/yaml.ts";
import { test } from "../_support/test.ts";

/** Reads `text` both ways: either the block reader leaves it, or it reads exactly what js-yaml reads. */
function agree(text: string): "read" | "left" {
  const block = readBlockYaml(text);
  let expected: unknown;
  let rejected = false;
  try {
    expected = parseYaml(text, "test.yaml");
  } catch {
    rejected = true;
  }
  if (block === undefined) return "left";
  assert.ok(!rejected, `read a file js-yaml rejects:\n${text}`);
  assert.deepStrictEqual(block.value, expected, `read differently from js-yaml:\n${text}`);
  return "read";
}

test("block YAML: the example config and the bench's configs are read here, as js-yaml reads them", async () => {
  assert.equal(
    agree(await Deno.readTextFile(new URL("../../llmproxy.yaml.example", import.meta.url))),
    "read",
  );
  for (const routing of [undefined, "least_busy", "tiers"] as const) {
    for (const cache of [false, true]) {
      assert.equal(agree(configYaml({ upstreamUrl: "http://127.0.0.1:8080", cache, routing })), "read");
    }
  }
  const entraOnCluster = configYaml({
    upstreamUrl: "http://127.0.0.1:8080",
    cache: false,
    entraAuthority: "http://127.0.0.1:8081",
    redisClusterNodes: ["127.0.0.1:7000", "127.0.0.1:7001"],
    namespace: "bench1",
    usageStream: true,
    keys: 3,
    keyLimits: true,
  });
  assert.equal(agree(entraOnCluster), "read");
});

test("block YAML: each form is read as js-yaml reads it, or left to js-yaml", () => {
  const read = [
    "a: 1\nb: -2\nc: 0.5\nd: 127.0.0.1\ne: 2026-01-01\nf: yes\ng: ~\nh: null\ni: True\nj:\nk: gpt-4o-mini",
    "a: 'it''s' # quoted\nb: \"x # y\"\nc: a#b\nd: a # comment\ne: os.environ/KEY\nf: http://h:1/p?q=1",
    "list:\n- a\n- b\nnested:\n  - x: 1\n    y: [a, 'b c', \"d\", 3]\n  -\n    z: 2\nempty: []",
    "# only a comment\n\na:\n  b:\n    c: d\n  e: f\n",
    "- 1\n- two\n-\n  - 3",
    "",
  ];
  for (const text of read) assert.equal(agree(text), "read", text);
  const left = [
    "a: &x 1\nb: *x",
    "a: { b: 1 }",
    "a: |\n  text",
    "a: 010",
    "a: 1e3",
    "a: .inf",
    "a: 0x1F",
    "a: -0",
    'a: "line\\n"',
    "a: 1\na: 2",
    "a:\n    b: 1\n  c: 2",
    "a: b\n  c",
    "a:\tb",
    "a: b\r\n",
    "a: café",
    "--- \na: 1",
    "a: [b, [c]]",
    "a: [b,]",
    "<<: {a: 1}",
    "__proto__: 1",
    "'quoted key': 1",
    "a: b: c",
    "a: 9999999999999999",
    "a: 1_000",
    "a: [1:30]",
    "a: +1",
    "# only a comment\n",
  ];
  for (const text of left) assert.equal(agree(text), "left", text);
});

test("block YAML: nesting js-yaml refuses (100 levels) is left to it, and a very deep file does not overflow", () => {
  const nested = (depth: number) => Array.from({ length: depth }, (_, i) => `${" ".repeat(i)}k:`).join("\n");
  assert.equal(agree(nested(40)), "read");
  assert.equal(agree(nested(100)), "left");
  assert.equal(readBlockYaml(nested(3000)), undefined);
});

test("block YAML: an empty item that ends a nested list, before an outer list's next item, is left to js-yaml", () => {
  // js-yaml puts the outer list's next item into the nested list (`k: [null, "q"]`); read here, it would not be.
  for (
    const text of [
      "- k:\n  -\n- q",
      "- k:\n  - x\n  - # c\n\n- q",
      "-\n  -\n- q",
      "model_groups:\n  - model_group: a\n    models:\n      - model: x\n      -\n  - model_group: b\n",
    ]
  ) assert.equal(agree(text), "left", text);
  // An empty item before a key, or at the end, is read as js-yaml reads it.
  for (const text of ["- k:\n  -\n  j: 1\n- q", "k:\n  -\nj: 1", "- a\n-"]) {
    assert.equal(agree(text), "read", text);
  }
});

test("block YAML: 4,000 random documents, every one it reads is read as js-yaml reads it", () => {
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  // Mostly keys read here; some that js-yaml resolves (`True:` is "true") or that are not plain keys.
  const keys = ["a", "model", "base_url", "x-y", "a.b", "k1", "_k", "true", "null"];
  const oddKeys = ["True", "NULL", "Null", "FALSE", "~", "1a", "a b", "<<"];
  const scalars = [
    "x",
    "gpt-4o-mini",
    "127.0.0.1",
    "1",
    "-1",
    "0",
    "-0",
    "010",
    "1.5",
    "-0.0",
    "1.",
    ".5",
    "1e3",
    "+1",
    "0x1F",
    "0o7",
    "0b1",
    "~",
    "null",
    "NULL",
    "Null",
    "true",
    "False",
    "yes",
    "on",
    "os.environ/K",
    "a: b",
    "a:b",
    "a #c",
    "a#c",
    "'q'",
    "'it''s'",
    '"dq"',
    '"a\\nb"',
    '"a # b"',
    "[a, b]",
    "[1, '2', \"3\"]",
    "[]",
    "[a,]",
    "{a: 1}",
    "&a x",
    "*a",
    "!!str 1",
    "|",
    ">",
    "- x",
    "-x",
    "@x",
    "%x",
    "?x",
    ",x",
    ":x",
    "<<",
    ".inf",
    ".NaN",
    "2026-01-01",
    "12:30",
    "1_000",
    "x  ",
    "''",
    '""',
    "a # b # c",
    "999999999999999",
    "9999999999999999",
    "1.123456789012345",
    "[a, [b]]",
    "[a:b]",
    "[x'y, z]",
    "[ 1 , -2 ]",
    "[a b, 'c d']",
    "[-, a]",
    "[a: b]",
    "'unclosed",
    "x'y",
    'x"y',
    "`x",
  ];
  const comment = () => (random() < 0.2 ? "  # note" : "");
  const block = (depth: number, indent: number): string[] => {
    const pad = " ".repeat(indent);
    const lines: string[] = [];
    const sequence = random() < 0.35;
    for (let n = 1 + Math.floor(random() * 3); n > 0; n--) {
      if (random() < 0.1) lines.push(random() < 0.5 ? "" : `${pad}# comment`);
      const head = sequence ? `${pad}-` : `${pad}${pick(random() < 0.9 ? keys : oddKeys)}:`;
      const r = random();
      if (depth > 0 && r < 0.4) {
        // A nested block: deeper, or a list at the key's own indentation, or (rarely) wrongly indented.
        const step = random() < 0.1 ? 1 : random() < 0.5 ? 2 : 4;
        const same = !sequence && random() < 0.25;
        lines.push(head + comment());
        lines.push(...(same ? block(depth - 1, indent).map((l) => l) : block(depth - 1, indent + step)));
      } else if (sequence && depth > 0 && r < 0.55) {
        // `- key: value` with its siblings lined up below.
        const [first, ...rest] = block(depth - 1, indent + 2);
        lines.push(`${pad}- ${(first ?? "").trimStart()}`, ...rest);
      } else {
        lines.push(`${head} ${pick(scalars)}${comment()}`);
      }
    }
    return lines;
  };
  let read = 0;
  for (let i = 0; i < 4000; i++) {
    const text = block(3, 0).join("\n") + (random() < 0.5 ? "\n" : "");
    if (agree(text) === "read") read++;
  }
  // The generator keeps enough documents inside the subset for this to test the reader, not only its refusals.
  assert.ok(read > 400, `only ${read} of 4000 documents were read`);
});
