/**
 * Redis's `MONITOR` for a test: every command the server runs while it is on, one line each, as Redis prints them
 * (`+<time> [<db> <client>] "<command>" "<arg>" ...`). Only what clients sent: commands run by scripts (shown as
 * from `lua`) are left out.
 *
 *   await using watch = await monitor(redis.port);
 *   ...
 *   const lines = watch.lines();
 */

import { delay } from "./proxy.ts";

export interface Monitor extends AsyncDisposable {
  lines(): string[];
}

export async function monitor(port: number): Promise<Monitor> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode("MONITOR\r\n"));
  let text = "";
  const reading = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of conn.readable) text += decoder.decode(chunk, { stream: true });
    } catch { /* closed */ }
  })();
  const close = async () => {
    try {
      conn.close();
    } catch { /* closed */ }
    await reading;
  };
  // `+OK` comes once MONITOR is on (bounded: 1 s).
  for (let i = 0; i < 100 && !text.startsWith("+OK"); i++) await delay(10);
  if (!text.startsWith("+OK")) {
    await close();
    throw new Error(`MONITOR on 127.0.0.1:${port} did not start`);
  }
  return {
    lines: () =>
      text.split("\r\n").filter((line) => line.startsWith("+") && line !== "+OK" && !line.includes(" lua]")),
    [Symbol.asyncDispose]: close,
  };
}
