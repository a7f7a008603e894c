/**
 * The access log as an operator reads it on the proxy's stderr: one JSON line per request, in the order the
 * requests were answered, each with its ISO time; an error line is written at once, after the lines before it.
 * Lines are formatted when their batch is written (src/logger.ts), not on the answer's path.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxyProcess } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface Line {
  readonly msg: string;
  readonly level: string;
  readonly time: unknown;
  readonly request_id?: string;
  readonly status?: number;
  readonly path?: string;
}

/** The JSON lines printed so far. */
function jsonLines(output: string): Line[] {
  return output.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
}

test("access log: a line per request in answer order with its ISO time; an error line after those before it", async () => {
  await using sim = await SimUpstream.start({ quiet: true, chunks: 3 });
  const dead = ["  - model_group: gpt-dead", "    models:", endpointYaml("http://127.0.0.1:1")].join("\n");
  const yaml = groupYaml([endpointYaml(sim.url)], ["num_retries: 0"]).replace(
    "general_settings:",
    `${dead}\ngeneral_settings:`,
  );
  const dir = await Deno.makeTempDir();
  const path = `${dir}/llmproxy.yaml`;
  await Deno.writeTextFile(path, yaml);
  try {
    await using proxy = await startProxyProcess(["--config", path, "--port", "0", "--log-level", "info"]);
    const send = (id: string, model: string, stream: boolean) =>
      fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": id },
        body: JSON.stringify({ model, stream, messages: [{ role: "user", content: "hi" }] }),
      });
    const before = Date.now();
    const first = await send("req-1", "gpt-test", false);
    assert.equal(first.status, 200);
    await first.body?.cancel();
    const streamed = await send("req-2", "gpt-test", true);
    assert.equal(streamed.status, 200);
    assert.match(await streamed.text(), /data: \[DONE\]/);
    // A failed request logs an error (written at once) and then its own access line.
    const failed = await send("req-3", "gpt-dead", false);
    assert.ok(failed.status >= 500, `status ${failed.status}`);
    await failed.body?.cancel();
    const after = Date.now();

    // Batched lines are written within the flush delay (10 ms); a loaded machine gets up to 3 s.
    const wanted = (lines: Line[]) => lines.filter((line) => line.request_id?.startsWith("req-"));
    for (let i = 0; i < 150 && wanted(jsonLines(proxy.output())).length < 4; i++) await delay(20);
    const lines = wanted(jsonLines(proxy.output()));
    assert.deepEqual(
      lines.map((line) => `${line.level} ${line.msg} ${line.request_id} ${line.status ?? ""}`.trim()),
      [
        "info request req-1 200",
        "info request req-2 200",
        `error request failed req-3 ${failed.status}`,
        `info request req-3 ${failed.status}`,
      ],
      proxy.output(),
    );
    for (const line of lines) {
      assert.match(String(line.time), ISO_TIME, JSON.stringify(line));
      const at = Date.parse(String(line.time));
      // The time the line was logged (its request answered), not when its batch was written.
      assert.ok(at >= before - 1 && at <= after + 1, `${line.time} not within the requests`);
    }
    assert.equal(lines[0].path, "/v1/chat/completions");
    assert.equal(await proxy.stop("SIGTERM"), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
