/**
 * Uploads read whole before they are sent (a declared length of at most 4 MiB, so they can go to another endpoint)
 * are bounded together by `max_inflight_body_bytes` even when `max_body_bytes` is below 4 MiB: the request-body
 * bound leaves out a body declared over `max_body_bytes`, so before, nothing counted them.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const MiB = 1024 * 1024;
const boundary = "upload-hold-boundary";

/** A form of `fields` (name, value) then a file of 3 MiB, or the file first when `fileFirst`. */
function form(fields: [string, string][], fileFirst = false): Blob {
  const text = fields.map(([name, value]) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
  ).join("");
  const file = [
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n`,
    new Uint8Array(3 * MiB).fill(120),
    "\r\n",
  ];
  return new Blob(
    fileFirst ? [...file, text, `--${boundary}--\r\n`] : [text, ...file, `--${boundary}--\r\n`],
  );
}

test("uploads read whole are bounded by max_inflight_body_bytes when max_body_bytes is below 4 MiB", async () => {
  await using sim = await SimUpstream.start({ name: "s", quiet: true });
  // Each upload is held until its endpoint's timeout: three of 3 MiB at once against a bound of 8 MiB.
  const yaml = groupYaml([endpointYaml(sim.url, { name: "s", extra: "          timeout: 2" })], [
    `max_body_bytes: ${MiB}`,
    `max_inflight_body_bytes: ${8 * MiB}`,
  ]);
  const cases: { path: string; body: () => Blob; headers: Record<string, string> }[] = [
    { path: "files", body: () => form([["purpose", "user_data"]]), headers: {} },
    {
      path: "audio/transcriptions",
      body: () => form([["model", "gpt-test"]]),
      headers: { "x-llmproxy-model-group": "gpt-test" },
    },
    { path: "audio/transcriptions", body: () => form([["model", "gpt-test"]], true), headers: {} },
  ];
  for (const { path, body, headers } of cases) {
    // A proxy each: the timeouts cool the endpoint down.
    await using proxy = await startProxy(yaml, { logLevel: "error" });
    sim.reset();
    sim.always({ kind: "hang" });
    const statuses = await Promise.all([0, 1, 2].map(async () => {
      const answer = await fetch(`${proxy.url}/v1/${path}`, {
        method: "POST",
        headers: { "content-type": `multipart/form-data; boundary=${boundary}`, ...headers },
        body: body(),
      });
      const { error } = await answer.json();
      if (answer.status === 503) {
        assert.equal(error.code, "server_busy");
        assert.equal(answer.headers.get("retry-after"), "1");
      }
      return answer.status;
    }));
    const what = `${path} ${JSON.stringify(headers)}: ${statuses}`;
    assert.ok(statuses.includes(503), what);
    assert.ok(statuses.filter((status) => status === 504).length >= 1, what);
    assert.ok(sim.count(`/${path}`) <= 2, `${what}; the upstream got ${sim.count(`/${path}`)}`);
    assert.equal(proxy.services.bodyPool.held, 0, `${what}: given back`);
  }
});
