/**
 * The simulated upstream in a subprocess of its own, so that neither its work nor the test's stalls the proxy
 * subprocess's clock or the other's (the loop tests time the proxy's answers while it parses big bodies).
 */

import { tracked } from "./children.ts";

const SIM = new URL("../../src/sim/upstream.ts", import.meta.url).href;

/** Starts the simulated upstream (recording off); resolves once it prints its URL. */
export async function simProcess(): Promise<{ url: string } & AsyncDisposable> {
  const script = `import { SimUpstream } from "${SIM}";
const sim = await SimUpstream.start({ name: "a", quiet: true, record: false });
console.log("SIM " + sim.url);
await new Promise(() => {});`;
  const child = tracked(
    "simulated upstream",
    new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn(),
  );
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 20_000;
  while (!/SIM (\S+)/.test(text) && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const match = text.match(/SIM (\S+)/);
  const dispose = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
  };
  if (!match) {
    await dispose();
    throw new Error(`sim did not start: ${text}`);
  }
  return { url: match[1], [Symbol.asyncDispose]: dispose };
}

/** CPU and run-queue milliseconds of a thread so far (Linux scheduler statistics). */
export function schedMs(path: string): { cpu: number; wait: number } {
  const [cpu, wait] = Deno.readTextFileSync(path).split(" ").map(Number);
  return { cpu: cpu / 1e6, wait: wait / 1e6 };
}

/** A process's main thread's scheduler statistics. */
export const mainThread = (pid: number) => `/proc/${pid}/task/${pid}/schedstat`;
