/**
 * What a streamed cache miss that nobody else asks for costs with Redis (the path streamed coalescing across
 * instances must keep as cheap as it was): per request, the Redis commands it caused (INFO's
 * total_commands_processed, which does not depend on machine load) and the proxy's CPU time. Each build
 * (`--main`, e.g. a snapshot before and after a change) gets its own Redis and the same simulated upstream;
 * `--requests` unique streamed prompts one after the other, after 20 to warm up.
 *
 *   deno run -A bench/stream_miss_cost.ts --main /tmp/before/main.ts --main /tmp/after/main.ts [--requests 300]
 */

import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { SimUpstream } from "../src/sim/upstream.ts";
import { startRedis } from "../tests/_support/redis.ts";
import { cpuMs } from "./cpu_time.ts";
import { BENCH_GROUP, configYaml, V8_FLAGS } from "./proxy_config.ts";
import { startServer } from "./server_process.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { main: { type: "string", multiple: true }, requests: { type: "string", default: "300" } },
});
const mains = (values.main ?? [new URL("../main.ts", import.meta.url).pathname]).map((main) => resolve(main));
const requests = Number(values.requests);
const HEADERS = { "content-type": "application/json", authorization: "Bearer sk-bench-client" };

async function ask(url: string, prompt: string): Promise<void> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: HEADERS,
    body: JSON.stringify({ model: BENCH_GROUP, stream: true, messages: [{ role: "user", content: prompt }] }),
  });
  await response.text();
  if (response.status !== 200) throw new Error(`status ${response.status}`);
}

/** Calls per command so far (INFO commandstats; the commands a script runs count under their own names). */
async function commands(redis: { command(...args: string[]): Promise<string | null> }) {
  const info = await redis.command("INFO", "commandstats") ?? "";
  return new Map([...info.matchAll(/cmdstat_(\w+(?:\|\w+)?):calls=(\d+)/g)].map((m) => [m[1], Number(m[2])]));
}

/** The calls per request of each command between two readings (the INFO of the first reading left out). */
function perRequest(before: Map<string, number>, after: Map<string, number>): string {
  const rows = [...after].map((
    [name, calls],
  ) => [name, calls - (before.get(name) ?? 0) - (name === "info" ? 1 : 0)])
    .filter(([, calls]) => Number(calls) > 0)
    .map(([name, calls]) => `${name} ${(Number(calls) / requests).toFixed(2)}`);
  return rows.join(", ");
}

await using sim = await SimUpstream.start({ quiet: true, record: false, chunks: 20 });
for (const main of mains) {
  await using redis = await startRedis();
  const path = await Deno.makeTempFile({ prefix: "llmproxy-bench-", suffix: ".yaml" });
  await Deno.writeTextFile(path, configYaml({ upstreamUrl: sim.url, cache: true, redisUrl: redis.url }));
  await using proxy = await startServer(main, {
    args: ["run", "-A", V8_FLAGS, main, "--config", path, "--port", "0", "--log-level", "error"],
    cwd: dirname(main),
  });
  await Deno.remove(path);
  const run = crypto.randomUUID();
  for (let i = 0; i < 20; i++) await ask(proxy.url, `warm ${run} ${i}`);
  await new Promise((resolve) => setTimeout(resolve, 300)); // the warm-up's cache writes
  const [commandsBefore, cpuBefore] = [await commands(redis), cpuMs(proxy.pid)];
  for (let i = 0; i < requests; i++) await ask(proxy.url, `miss ${run} ${i}`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const cpu = (cpuMs(proxy.pid) - cpuBefore) * 1000 / requests;
  console.log(`${main}: ${cpu.toFixed(0)} us CPU per streamed miss; Redis calls per streamed miss:`);
  console.log(`  ${perRequest(commandsBefore, await commands(redis))}`);
}
