// The suite's own guarantees: a hung test fails at its deadline instead of hanging the run, and every test file
// goes through tests/_support/test.ts, so every test has that deadline.
import assert from "node:assert/strict";
import { test } from "./_support/test.ts";

const HELPER = new URL("./_support/test.ts", import.meta.url).href;

test("a test that hangs fails at its timeout with a message naming it, and the run goes on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "llmproxy-timeout-" });
  try {
    const file = `${dir}/hang_test.ts`;
    await Deno.writeTextFile(
      file,
      [
        `import { test } from ${JSON.stringify(HELPER)};`,
        `test("hangs for ever", { timeout: 300, sanitizeOps: false, sanitizeResources: false }, () => new Promise(() => {}));`,
        `test("runs after it", () => {});`,
      ].join("\n"),
    );
    const started = performance.now();
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--no-check", "--allow-all", file],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const took = performance.now() - started;
    const out = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
    assert.equal(run.success, false, out);
    assert.match(out, /test "hangs for ever" did not finish within 300 ms/);
    assert.match(out, /1 passed.*1 failed/);
    assert.ok(took < 20_000, `the run took ${Math.round(took)} ms`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("every test file uses the deadline-keeping test(), never Deno.test directly", async () => {
  const offenders: string[] = [];
  const root = new URL("./", import.meta.url);
  const walk = async (dir: URL, rel: string): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${rel}${entry.name}`;
      if (entry.isDirectory) await walk(new URL(`${entry.name}/`, dir), `${path}/`);
      else if (entry.name.endsWith(".ts") && path !== "_support/test.ts" && path !== "support_test.ts") {
        const text = await Deno.readTextFile(new URL(entry.name, dir));
        if (/\bDeno\.test\s*\(/.test(text)) offenders.push(path);
      }
    }
  };
  await walk(root, "");
  assert.deepEqual(offenders, [], "use test() from tests/_support/test.ts, which gives every test a timeout");
});
