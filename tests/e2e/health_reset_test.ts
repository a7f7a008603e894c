/**
 * A success resets an endpoint's failure count: failures that are not in a row never cool it down, whether the
 * success was a whole JSON answer or a stream.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const chat = (url: string, stream: boolean) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", stream, messages: [{ role: "user", content: "hi" }] }),
  });

for (const stream of [false, true]) {
  test(`health: a ${stream ? "streamed" : "whole"} success between two failures resets the count`, async () => {
    await using sim = await SimUpstream.start({ name: "a", quiet: true });
    // Two failures in a row cool the endpoint down (30 s, groupYaml); it is the group's only endpoint.
    await using proxy = await startProxy(
      groupYaml([endpointYaml(sim.url, { name: "a" })], ["allowed_fails: 2"]),
    );
    for (let round = 0; round < 3; round++) {
      sim.next({ kind: "status", status: 500 });
      const failed = await chat(proxy.url, stream);
      await failed.body?.cancel();
      assert.notEqual(failed.status, 200, `round ${round}: the upstream's 500`);
      const served = await chat(proxy.url, stream);
      await served.text();
      assert.equal(
        served.status,
        200,
        `round ${round}: one failure since the last success does not cool it down`,
      );
    }
  });
}
