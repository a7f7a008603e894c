/** Memory of another process on Linux, from `/proc/PID/status`, in MiB. */

async function statusField(pid: number, field: string): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

/** The largest resident set the process has had so far (`VmHWM`). */
export const peakRssMib = (pid: number) => statusField(pid, "VmHWM");

/** The resident set now (`VmRSS`). */
export const rssMib = (pid: number) => statusField(pid, "VmRSS");

/** Open file descriptors of the process. */
export async function openFds(pid: number): Promise<number> {
  let count = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) count++;
  return count;
}
