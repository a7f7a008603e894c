import assert from "node:assert/strict";
import { COMPILE_FLAGS, V8_FLAGS } from "../../scripts/compile.ts";
import { test } from "../_support/test.ts";

const tasks: Record<string, string> = JSON.parse(
  await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
).tasks;

test("every way of running the proxy uses the same V8 and unstable flags (tasks, compile script, binary)", () => {
  for (const name of ["start", "dev", "demo", "compile", "start:bundle"]) {
    assert.ok(tasks[name].split(" ").includes(V8_FLAGS), `task ${name}: ${tasks[name]}`);
  }
  for (const flag of COMPILE_FLAGS) {
    assert.ok(tasks.compile.split(" ").includes(flag), `compile task lacks ${flag}`);
    assert.ok(tasks["start:bundle"].split(" ").includes(flag), `start:bundle task lacks ${flag}`);
  }
});
