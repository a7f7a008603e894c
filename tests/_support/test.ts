/**
 * `Deno.test` with a deadline. A test that runs past its timeout fails with a message naming it, instead of
 * hanging the suite until CI's own limit ends the whole run. Every test in this repo goes through here.
 *
 *   test("name", async () => { ... });
 *   test("name", { timeout: 5_000 }, async () => { ... });
 *   test({ name: "name", ignore: !available("redis-server"), timeout: 20_000, async fn() { ... } });
 *
 * When the deadline passes, the test's own promise is left behind (it cannot be cancelled from outside); Deno's
 * sanitizers then report whatever it still holds, which is the point: something hung. The child processes the
 * helpers started for the test (`children.ts`) are stopped then, and after a failed test too; a test that passes
 * but leaves one running fails.
 */

import { childMark, stopStartedSince } from "./children.ts";

/** The default deadline of one test, steps included. */
export const DEFAULT_TEST_TIMEOUT_MS = 30_000;

type TestFn = (t: Deno.TestContext) => void | Promise<void>;

/** `Deno.test`'s options plus `timeout`, in milliseconds. */
export interface TestOptions extends Omit<Deno.TestDefinition, "name" | "fn"> {
  readonly timeout?: number;
}

/** A whole definition, as `Deno.test({ name, fn, ... })` takes it, plus `timeout`. */
export interface TestDefinition extends TestOptions {
  readonly name: string;
  fn: TestFn;
}

export function test(name: string, fn: TestFn): void;
export function test(name: string, options: TestOptions, fn: TestFn): void;
export function test(definition: TestDefinition): void;
export function test(
  first: string | TestDefinition,
  second?: TestFn | TestOptions,
  third?: TestFn,
): void {
  const definition: TestDefinition = typeof first === "string"
    ? typeof second === "function"
      ? { name: first, fn: second }
      : { ...second, name: first, fn: third as TestFn }
    : first;
  const { timeout = DEFAULT_TEST_TIMEOUT_MS, fn, ...rest } = definition;
  Deno.test({ ...rest, fn: withDeadline(definition.name, timeout, fn) });
}

function withDeadline(name: string, timeoutMs: number, fn: TestFn): TestFn {
  return async (t) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`test "${name}" did not finish within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    const mark = childMark();
    const run = Promise.resolve().then(() => fn(t));
    // A run that fails after its deadline already failed the test must not surface as an unhandled rejection.
    run.catch(() => {});
    try {
      await Promise.race([run, deadline]);
    } catch (error) {
      // What a helper started for this test and the test left running (it failed, or hung past its deadline
      // before its own cleanup) is stopped here.
      await stopStartedSince(mark);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    // A test that passed while leaving one running fails, naming it.
    const left = await stopStartedSince(mark);
    if (left.length > 0) throw new Error(`test "${name}" left child processes running: ${left.join(", ")}`);
  };
}

/**
 * Whether a test that needs `binary` should run: it is on the PATH, or this is CI (`CI` set), where a missing
 * binary must fail the suite loudly instead of skipping it. Use as `ignore: !available("redis-server")`.
 */
export function available(binary: string): boolean {
  return onPath(binary) || Deno.env.get("CI") !== undefined;
}

function onPath(binary: string): boolean {
  const path = Deno.env.get("PATH") ?? "";
  for (const dir of path.split(":")) {
    if (!dir) continue;
    try {
      if (Deno.statSync(`${dir}/${binary}`).isFile) return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}
