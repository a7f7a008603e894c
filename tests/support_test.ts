// The suite's own guarantees: a hung test fails at its deadline instead of hanging the run, and every test file
// goes through tests/_support/test.ts, so every test has that deadline.
import assert from "node:assert/strict";
import { test } from "./_support/test.ts";
import { hasRedis } from "./_support/redis.ts";

const HELPER = new URL("./_support/test.ts", import.meta.url).href;
const REDIS = new URL("./_support/redis.ts", import.meta.url).href;

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

/** Whether process `pid` still runs (a zombie, or a pid gone, does not). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX] /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

test({
  name:
    "a test that hangs, fails or passes with a helper's Redis still running leaves no redis-server behind",
  ignore: !hasRedis,
  timeout: 60_000,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "llmproxy-children-" });
    try {
      const file = `${dir}/leave_test.ts`;
      // Each test prints its server's pid; the hung Redis (SIGSTOP) ignores SIGTERM until it runs again.
      const started = `const redis = await startRedis();
  const info = await redis.command("INFO", "server");
  console.log("PID " + info?.match(/process_id:(\\d+)/)?.[1]);`;
      const lax = "sanitizeOps: false, sanitizeResources: false";
      await Deno.writeTextFile(
        file,
        [
          `import { test } from ${JSON.stringify(HELPER)};`,
          `import { startRedis } from ${JSON.stringify(REDIS)};`,
          `test("hangs with its Redis hung", { timeout: 1500, ${lax} }, async () => {
  ${started}
  await redis.signal("SIGSTOP");
  await new Promise(() => {});
});`,
          `test("fails with its Redis hung", { timeout: 10000, ${lax} }, async () => {
  await using stopped = await (async () => { ${started}; return redis; })();
  await stopped.signal("SIGSTOP");
  throw new Error("failed on purpose");
});`,
          `test("passes and leaves its Redis", { ${lax} }, async () => {
  ${started}
});`,
        ].join("\n"),
      );
      const run = await new Deno.Command(Deno.execPath(), {
        args: ["test", "--no-check", "--allow-all", file],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
      const pids = [...out.matchAll(/PID (\d+)/g)].map((match) => Number(match[1]));
      assert.equal(pids.length, 3, out);
      assert.deepEqual(pids.filter(alive), [], `redis-servers left running after the run:\n${out}`);
      assert.match(out, /test "hangs with its Redis hung" did not finish within 1500 ms/);
      // Its own cleanup stopped the hung server: the test failed with its error, not at its deadline.
      assert.match(out, /Error: failed on purpose/);
      assert.doesNotMatch(out, /test "fails with its Redis hung" did not finish/);
      assert.match(
        out,
        /test "passes and leaves its Redis" left child processes running: redis-server \(pid \d+\)/,
      );
      assert.match(out, /0 passed.*3 failed/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
