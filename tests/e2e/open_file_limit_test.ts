/**
 * The default `max_connections` under the permissions the proxy ships with (the tasks', the binary's: no
 * `--allow-all`). Deno hides `/proc/self/limits` from them, so the open-file limit (`ulimit -n`, systemd's
 * `LimitNOFILE`) is not seen: the cap is the fallback, 1,024, and the start-up line says how to raise it
 * (README "Limits against hostile clients and upstreams"). With `--allow-all`, as the test suite runs, it is read.
 */

import assert from "node:assert/strict";
import { COMPILE_FLAGS } from "../../scripts/compile.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

/** The `client connection limits` line of a proxy started with `settings` and `runFlags`, run under ulimit 4000. */
async function limitsLine(
  settings: string[],
  runFlags?: readonly string[],
): Promise<Record<string, unknown>> {
  await using sim = await SimUpstream.start({ quiet: true });
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(path, groupYaml([endpointYaml(sim.url)], settings));
    await using proxy = await startProxyProcess(["--config", path, "--port", "0"], {
      runFlags,
      openFileLimit: 4000,
    });
    // Log lines are written in batches: the line may follow the Listening line by a moment.
    const find = () => proxy.output().split("\n").find((text) => text.includes('"client connection limits"'));
    for (let i = 0; i < 100 && !find(); i++) await delay(20);
    const line = find();
    assert.ok(line, proxy.output());
    return JSON.parse(line);
  } finally {
    await Deno.remove(path);
  }
}

test("the shipped permissions cannot read the open-file limit: 1,024, and the log says to set max_connections", async () => {
  const shipped = await limitsLine([], COMPILE_FLAGS);
  assert.equal(shipped.max_connections, 1024);
  assert.equal(shipped.open_file_limit, null);
  assert.match(String(shipped.note), /--allow-all.*general_settings\.max_connections/);

  const set = await limitsLine(["max_connections: 1900"], COMPILE_FLAGS);
  assert.equal(set.max_connections, 1900);
  assert.equal(set.note, undefined);

  const all = await limitsLine([]);
  assert.deepEqual([all.max_connections, all.open_file_limit, all.note], [1968, 4000, undefined]);
});
