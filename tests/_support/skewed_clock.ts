/**
 * A proxy process whose wall clock is off, as on a machine of a fleet whose time is wrong: Debian's libfaketime
 * (`apt-get install faketime`) preloaded into `deno` moves `Date.now` (and every other reading of the wall clock)
 * by an offset, while timers, which run on the monotonic clock, keep true time. No wrapper process: the proxy's
 * pid stays its own. Tests that need it skip where it is missing, except in CI.
 */

const LIBRARIES = [
  "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
  "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
  "/usr/lib/faketime/libfaketime.so.1",
];

const library = LIBRARIES.find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

/** True where libfaketime is installed, and always in CI (where its absence must fail loudly). */
export const hasFaketime: boolean = library !== undefined || Deno.env.get("CI") !== undefined;

/** The environment that runs a process with its wall clock moved by `offset` (libfaketime's `+1h`, `-90m`). */
export function skewedClockEnv(offset: string): Record<string, string> {
  if (library === undefined) throw new Error("libfaketime is not installed: apt-get install faketime");
  return { LD_PRELOAD: library, FAKETIME: offset, FAKETIME_DONT_FAKE_MONOTONIC: "1" };
}
