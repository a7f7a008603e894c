/**
 * What an operator sees for the problems found once the file's shape is valid, as for the schema's: `--check`
 * names the path and the line of a duplicate name, a missing `api_key`, a `keys[].models` entry no group matches;
 * an empty `models` list is refused (in the file and through the admin routes) rather than read as "every model";
 * a number written as `"0x10"` is refused rather than read as 16.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, runCli, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

async function check(text: string): Promise<{ code: number; output: string }> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/llmproxy.yaml`, text);
    return await runCli(["--check", "--config", `${dir}/llmproxy.yaml`], { OPENAI_API_KEY: "" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The 1-based line of the first line of `text` that contains `marker`. */
const lineOf = (text: string, marker: string) =>
  text.split("\n").findIndex((line) => line.includes(marker)) + 1;

test(
  "--check gives the line of problems found across entries, as of schema problems",
  { timeout: 30_000 },
  async () => {
    const text = `model_groups:
  - model_group: gpt-test
    models:
      - model: m
        params:
          base_url: http://127.0.0.1:9
          api_key: sk-one
          name: east
      - model: m
        params:
          base_url: http://127.0.0.1:10
          name: east
  - model_group: gpt-test
    models:
      - model: m
        params: { base_url: "http://127.0.0.1:11", api_key: sk-two }
keys:
  - { name: team-a, key: sk-team-a, models: [gpt-tset] }
  - name: team-b
    key: sk-team-b
    models:
      - gpt-test
      - nothing-like-it
  - name: team-c
    key: sk-team-c
    rpm: "0x10"
  - name: team-a
    key: sk-team-d
`;
    const result = await check(text);
    assert.equal(result.code, 2, result.output);
    const expected = [
      [
        /model_groups\[0\]\.models\[1\]\.params\.api_key is required \(or set OPENAI_API_KEY\) \(line (\d+)\)/,
        10,
      ],
      [/model_groups\[0\]\.models\[1\]\.params\.name must be unique, got "east" again .* \(line (\d+)\)/, 12],
      [/model_groups\[1\]\.model_group must be unique, got "gpt-test" again .* \(line (\d+)\)/, 13],
      [/keys\[0\]\.models\[0\] must match a model group, got "gpt-tset" .* \(line (\d+)\)/, 18],
      [/keys\[1\]\.models\[1\] must match a model group, got "nothing-like-it" .* \(line (\d+)\)/, 23],
      [/keys\[3\]\.name must be unique, got "team-a" again .* \(line (\d+)\)/, 27],
    ] as const;
    // A schema problem stops the file before the checks across entries: first the one schema problem. (What is
    // under `keys:` is never shown.)
    assert.match(
      result.output,
      /keys\[2\]\.rpm must be a number in decimal digits, got <redacted> \(line (\d+)\)/,
    );
    assert.equal(Number(/keys\[2\]\.rpm .*\(line (\d+)\)/.exec(result.output)![1]), lineOf(text, '"0x10"'));

    const fixed = await check(text.replace('rpm: "0x10"', 'rpm: "16"'));
    assert.equal(fixed.code, 2, fixed.output);
    for (const [pattern, line] of expected) {
      const found = pattern.exec(fixed.output);
      assert.ok(found, `${pattern} in:\n${fixed.output}`);
      assert.equal(Number(found[1]), line, `${pattern}: line ${line} in:\n${text}`);
    }
    assert.ok(!fixed.output.includes("sk-"), "no key in the messages");
  },
);

test("keys[].models: [] is refused with a clear message, in the file and through the admin routes", {
  timeout: 30_000,
}, async () => {
  const file = groupYaml([endpointYaml("http://127.0.0.1:9")]) +
    "keys:\n  - name: team-a\n    key: sk-a\n    models: []\n";
  const refused = await check(file);
  assert.equal(refused.code, 2, refused.output);
  assert.match(
    refused.output,
    /keys\[0\]\.models must name at least one model group \(leave it out for all of them\), got <redacted> \(line \d+\)/,
  );

  const ADMIN = "sk-admin-config-problems";
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)], [`admin_keys: [${ADMIN}]`]));
  const admin = (method: string, path: string, body: unknown) =>
    fetch(`${proxy.url}/admin/keys${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify(body),
    }).then(async (response) => ({ status: response.status, body: await response.json() }));

  const empty = await admin("POST", "", { name: "team-b", models: [] });
  assert.equal(empty.status, 400);
  assert.equal(
    empty.body.error.message,
    "Invalid key policy: 'models' must name at least one model group (leave it out for all of them)",
  );
  const hex = await admin("POST", "", { name: "team-b", rpm: "0x10", tpm: "1e3" });
  assert.equal(hex.status, 400);
  assert.equal(
    hex.body.error.message,
    `Invalid key policy: 'rpm' must be a number in decimal digits, got "0x10"`,
  );
  assert.equal(hex.body.error.param, "rpm");

  const made = await admin("POST", "", { name: "team-b", models: ["gpt-test"], rpm: "16" });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  assert.equal(made.body.rpm, 16);
  const patched = await admin("PATCH", "/team-b", { models: [] });
  assert.equal(patched.status, 400);
  assert.match(patched.body.error.message, /'models' must name at least one model group/);
  const opened = await admin("PATCH", "/team-b", { models: null });
  assert.equal(opened.status, 200);
  assert.deepEqual(opened.body.models, ["*"], "null, not an empty list, opens every group");
});
