/**
 * The child processes the test helpers start (redis-server, redis-sentinel, the proxy, the simulated upstream,
 * chromium), so that `test()` stops whatever a test leaves running. A test that runs past its deadline never
 * reaches its own `await using`, and Deno does not end a test's children when the run ends: a Redis it started
 * would outlive the suite (two did in session 20).
 *
 *   const child = tracked("redis-server", new Deno.Command("redis-server", { args }).spawn());
 */

interface Tracked {
  readonly name: string;
  readonly child: Deno.ChildProcess;
  /** Which start this was: those after a test's `childMark()` are that test's. */
  readonly serial: number;
}

const running = new Set<Tracked>();
let serial = 0;

/** Registers a child process of a helper until it exits; returns it. */
export function tracked<C extends Deno.ChildProcess>(name: string, child: C): C {
  const entry = { name, child, serial: ++serial };
  running.add(entry);
  const exited = () => void running.delete(entry);
  child.status.then(exited, exited);
  return child;
}

/** A mark before a test runs: `stopStartedSince(mark)` then takes only what that test started. */
export function childMark(): number {
  return serial;
}

/**
 * Kills (SIGKILL, which ends a stopped process too) every tracked child started after `mark` that still runs,
 * waits for each to exit, and names them (`redis-server (pid 123)`); empty when the test left none.
 */
export async function stopStartedSince(mark: number): Promise<string[]> {
  const left = [...running].filter((entry) => entry.serial > mark);
  for (const { child } of left) {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
  await Promise.all(left.map(({ child }) => child.status));
  return left.map(({ name, child }) => `${name} (pid ${child.pid})`);
}
