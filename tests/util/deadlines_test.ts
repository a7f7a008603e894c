import assert from "node:assert/strict";
import { Deadlines } from "../../src/util/deadlines.ts";
import { delay } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

/**
 * When a plain timer armed now for `ms` fires, in ms from `start`: how late this process's timers run at the
 * moment. A deadline may be late by as much (a loaded machine delays every timer), plus the bound's own margin.
 */
function plainTimer(ms: number, start: number): { at: number } {
  const fired = { at: Infinity };
  setTimeout(() => fired.at = performance.now() - start, ms);
  return fired;
}

test("deadlines fire once each, in order, at about their time", async () => {
  const deadlines = new Deadlines();
  const fired: string[] = [];
  const start = performance.now();
  const at: Record<string, number> = {};
  const mark = (name: string) => () => {
    fired.push(name);
    at[name] = performance.now() - start;
  };
  deadlines.after(60, mark("60a"));
  deadlines.after(20, mark("20"));
  deadlines.after(60, mark("60b"));
  const plain20 = plainTimer(20, start);
  const plain60 = plainTimer(60, start);
  assert.equal(deadlines.pending, 3);
  await delay(150);
  assert.deepEqual(fired, ["20", "60a", "60b"]);
  assert.equal(deadlines.holdsProcess, false);
  assert.ok(
    at["20"] >= 19 && at["20"] < Math.max(20, plain20.at) + 40,
    `20 ms deadline fired at ${at["20"]} ms (a plain timer at ${plain20.at} ms)`,
  );
  assert.ok(
    at["60b"] >= 59 && at["60b"] < Math.max(60, plain60.at) + 60,
    `60 ms deadline fired at ${at["60b"]} ms (a plain timer at ${plain60.at} ms)`,
  );
  assert.equal(deadlines.pending, 0);
});

test("deadlines past due together fire in the order they fell due, whatever their durations", async () => {
  let now = 0;
  const deadlines = new Deadlines(() => now);
  const fired: string[] = [];
  deadlines.after(60, () => fired.push("60a"));
  deadlines.after(20, () => fired.push("20"));
  deadlines.after(60, () => fired.push("60b"));
  // A busy process: by the time the timer (armed for 20 ms) runs, all three are past due.
  now = 100;
  for (let waited = 0; fired.length < 3 && waited < 2000; waited += 10) await delay(10);
  assert.deepEqual(fired, ["20", "60a", "60b"]);
});

test("a cancelled deadline never fires, and cancelling the earliest does not delay the rest", async () => {
  const deadlines = new Deadlines();
  const fired: string[] = [];
  const first = deadlines.after(10, () => fired.push("first"));
  const start = performance.now();
  let secondAt = 0;
  deadlines.after(40, () => {
    fired.push("second");
    secondAt = performance.now() - start;
  });
  const third = deadlines.after(40, () => fired.push("third"));
  const plain40 = plainTimer(40, start);
  first.cancel();
  third.cancel();
  third.cancel();
  assert.equal(deadlines.pending, 1);
  await delay(100);
  assert.deepEqual(fired, ["second"]);
  assert.ok(
    secondAt >= 39 && secondAt < Math.max(40, plain40.at) + 50,
    `fired at ${secondAt} ms (a plain timer at ${plain40.at} ms)`,
  );
  first.cancel();
  assert.equal(deadlines.pending, 0);
});

test("a deadline cancelled by another of the same batch does not fire; a throwing one does not stop the rest", async () => {
  const deadlines = new Deadlines();
  const fired: string[] = [];
  const reported: unknown[] = [];
  const onError = (event: ErrorEvent) => {
    reported.push(event.error);
    event.preventDefault();
  };
  globalThis.addEventListener("error", onError);
  try {
    deadlines.after(20, () => {
      fired.push("first");
      second.cancel();
    });
    const second = deadlines.after(20, () => fired.push("second"));
    deadlines.after(20, () => {
      throw new Error("callback failed");
    });
    deadlines.after(20, () => fired.push("fourth"));
    await delay(80);
  } finally {
    globalThis.removeEventListener("error", onError);
  }
  assert.deepEqual(fired, ["first", "fourth"]);
  assert.equal((reported[0] as Error).message, "callback failed");
  assert.equal(deadlines.pending, 0);
  assert.equal(deadlines.holdsProcess, false);
});

test("cancelling every deadline counts them all out", () => {
  const deadlines = new Deadlines();
  const armed = Array.from({ length: 1000 }, (_, i) => deadlines.after(300_000 + (i % 3), () => {}));
  assert.equal(deadlines.pending, 1000);
  armed[0].cancel();
  assert.ok(deadlines.holdsProcess, "others still pending");
  for (const deadline of armed) deadline.cancel();
  assert.equal(deadlines.pending, 0);
  assert.equal(deadlines.holdsProcess, false);
});

test("a process whose deadlines were all cancelled exits at once; one still pending keeps it alive", async () => {
  const module = new URL("../../src/util/deadlines.ts", import.meta.url).href;
  const run = async (cancel: boolean) => {
    const script = `import { Deadlines } from "${module}";
      const deadlines = new Deadlines();
      const first = deadlines.after(60_000, () => {});
      const second = deadlines.after(300_000, () => {});
      ${cancel ? "first.cancel(); second.cancel();" : "first.cancel();"}`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      stdout: "null",
      stderr: "piped",
    })
      .spawn();
    const exited = await Promise.race([child.status.then(() => true), delay(3000).then(() => false)]);
    if (!exited) child.kill("SIGKILL");
    await child.status;
    await child.stderr.cancel();
    return exited;
  };
  assert.equal(await run(true), true, "the idle timer does not hold the process");
  assert.equal(await run(false), false, "a pending deadline does");
});
