/**
 * CPU time a process used (user + system, all its threads) from /proc/PID/stat. On a shared 2-core machine
 * requests per second swing with whatever else runs; CPU time per request served barely does, so it is the
 * steadier measure of what a server costs.
 */

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      const { stdout } = new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped", stderr: "null" })
        .outputSync();
      ticksPerSecond = Number(new TextDecoder().decode(stdout).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU milliseconds used so far by the process (utime + stime). */
export function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / clockTicks();
}

/** Runs `work` and returns its result with the CPU milliseconds `pid` used meanwhile. */
export async function withCpu<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; cpuMs: number }> {
  const before = cpuMs(pid);
  const result = await work();
  return { result, cpuMs: cpuMs(pid) - before };
}
