import assert from "node:assert/strict";
import { sleep, startTimer } from "../../src/util/timer.ts";
import { delay } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const TIMER_MODULE = new URL("../../src/util/timer.ts", import.meta.url).href;

test("a timer fires once after its delay; a repeating one until cancelled", async () => {
  const start = performance.now();
  let onceAt = 0;
  let once = 0;
  startTimer(30, () => {
    once++;
    onceAt = performance.now() - start;
  });
  let ticks = 0;
  const repeating = startTimer(20, () => {
    if (++ticks === 3) repeating.cancel();
  }, { repeat: true });
  await delay(200);
  assert.equal(once, 1);
  assert.ok(onceAt >= 29, `fired after ${onceAt} ms`);
  assert.equal(ticks, 3, "stopped by its own cancel");
  const before = performance.now();
  await sleep(25);
  assert.ok(performance.now() - before >= 24);
});

test("a cancelled timer never fires; cancel, ref and unref after it fired change nothing", async () => {
  const fired: string[] = [];
  const cancelled = startTimer(10, () => fired.push("cancelled"));
  cancelled.cancel();
  cancelled.cancel();
  const done = startTimer(1, () => fired.push("done"));
  await delay(60);
  done.ref();
  done.cancel();
  done.unref();
  cancelled.ref();
  assert.deepEqual(fired, ["done"]);
  // Deno's sanitizers fail this test if either timer were still pending or counted as keeping the process alive.
});

/** Runs `code` (with `startTimer` imported) in a fresh `deno eval`; its output and how long it lived. */
async function run(code: string): Promise<{ output: string; ms: number }> {
  const started = performance.now();
  const { stdout, stderr, success } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", `import { startTimer } from "${TIMER_MODULE}";\n${code}`],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.ok(success, output);
  return { output: output.trim(), ms: performance.now() - started };
}

test("a timer keeps the process alive unless unref'd", { timeout: 60_000 }, async () => {
  const held = await run(`startTimer(300, () => console.log("fired"));`);
  assert.equal(held.output, "fired");
  const unrefd = await run(
    `startTimer(60_000, () => console.log("fired"), { ref: false }); console.log("end");`,
  );
  assert.equal(unrefd.output, "end");
  assert.ok(unrefd.ms < 15_000, `lived ${unrefd.ms} ms`);
  // Cancelled at its second firing, not by a 700 ms timer racing it: at load ~15 the first firing came late
  // enough that the race left one ("fired").
  const again = await run(
    `let fired = 0;
    const t = startTimer(300, () => { console.log("fired"); if (++fired === 2) t.cancel(); }, { repeat: true, ref: false });
    t.ref();`,
  );
  assert.equal(again.output, "fired\nfired");
});

// Deno 2.9's timer globals are Node's: their first use loads Node's compatibility modules (issue 22.4a, idle RSS).
test("timers run without touching the Node timer globals", { timeout: 30_000 }, async () => {
  const { output } = await run(`
    for (const name of ["setTimeout", "setInterval", "clearTimeout", "clearInterval"]) {
      Object.defineProperty(globalThis, name, { get() { throw new Error(name + " used"); } });
    }
    const repeating = startTimer(5, () => { repeating.cancel(); console.log("repeated"); }, { repeat: true });
    const unused = startTimer(50, () => console.log("never"), { ref: false });
    unused.unref();
    unused.cancel();
    startTimer(20, () => console.log("once"));
  `);
  assert.equal(output, "repeated\nonce");
});

/** The proxy's sources (src/ and main.ts, TypeScript), as paths relative to the repo's root. */
async function sources(dir: URL, root: URL, into: string[] = []): Promise<string[]> {
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) await sources(url, root, into);
    else if (entry.name.endsWith(".ts")) into.push(url.pathname.slice(root.pathname.length));
  }
  return into;
}

test("the proxy arms its timers through startTimer, not the Node timer globals", async () => {
  const root = new URL("../../", import.meta.url);
  const files = ["main.ts", ...await sources(new URL("src/", root), root)];
  // timer.ts falls back on them; the simulated upstream (a test and demo tool) may use them.
  const allowed = new Set(["src/util/timer.ts"]);
  const using: string[] = [];
  for (const file of files) {
    if (allowed.has(file) || file.startsWith("src/sim/")) continue;
    const code = (await Deno.readTextFile(new URL(file, root))).replace(/^\s*(\/\/|\*|\/\*).*$/gm, "");
    const found = code.match(/\b(setTimeout|setInterval|setImmediate|clearTimeout|clearInterval)\s*\(/);
    if (found) using.push(`${file}: ${found[1]}`);
  }
  assert.ok(files.length > 100, `found ${files.length} source files`);
  assert.deepEqual(using, []);
});
