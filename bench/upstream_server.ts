/**
 * The bench's fake upstream as its own process: the repo's SimUpstream with recording off (little more than a
 * JSON parse per request), chat streams of `--chunks` content chunks `--chunk-delay-ms` apart.
 *
 *   deno run -A bench/upstream_server.ts --chunks 50 --chunk-delay-ms 10
 */

import { parseArgs } from "node:util";
import { SimUpstream } from "../src/sim/upstream.ts";

const flags = parseArgs({
  args: Deno.args,
  strict: true,
  options: { chunks: { type: "string", default: "50" }, "chunk-delay-ms": { type: "string", default: "10" } },
}).values;

const sim = await SimUpstream.start({
  name: "bench",
  quiet: true,
  record: false,
  chunks: Number(flags.chunks),
  chunkDelayMs: Number(flags["chunk-delay-ms"]),
});
console.log(`Listening on ${sim.url}`);

const stopped = new Promise<void>((resolve) => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => resolve());
});
await stopped;
await sim.close();
Deno.exit(0);
