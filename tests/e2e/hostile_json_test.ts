/**
 * JSON within the size limit but hostile in shape: every one gets a proper answer or a 400 naming the problem,
 * never a 500, with the answer cache on (its key is computed from the whole body).
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

test("deep nesting, huge arrays, 1e999, lone surrogates, invalid UTF-8: an answer or a 400, never a 500", {
  timeout: 60_000,
}, async () => {
  await using sim = await SimUpstream.start({ quiet: true, record: false });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)], ["cache: true"]), {
    logLevel: "warn",
  });
  const chat = (extra: string) => `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]${extra}}`;
  const cases: [string, string | Uint8Array<ArrayBuffer>, number, RegExp?][] = [
    [
      "5,000 levels deep",
      chat(`,"metadata":${"[".repeat(5000)}${"]".repeat(5000)}`),
      400,
      /nested more than 128/,
    ],
    [
      "5,000 objects deep",
      chat(`,"x":${'{"a":'.repeat(5000)}1${"}".repeat(5000)}`),
      400,
      /nested more than 128/,
    ],
    ["100 levels deep", chat(`,"metadata_x":${"[".repeat(100)}${"]".repeat(100)}`), 200],
    ["a 1,000,000-item array", chat(`,"logit_bias_x":[${new Array(1_000_000).fill(7).join(",")}]`), 200],
    ["1e999", chat(`,"temperature":1e999`), 400, /number out of range at 'temperature'/],
    ["-1e999 in an array", chat(`,"stop_x":[1,2,-1e999]`), 400, /out of range at 'stop_x\[2\]'/],
    [
      "a lone surrogate",
      `{"model":"gpt-test","messages":[{"role":"user","content":"a\\ud800b"}]}`,
      200,
    ],
    [
      "invalid UTF-8",
      new Uint8Array([
        ...encoder.encode('{"model":"gpt-test","messages":[{"role":"user","content":"'),
        0xff,
        0xfe,
        ...encoder.encode('"}]}'),
      ]),
      400,
      /not valid UTF-8/,
    ],
  ];
  for (const [name, body, status, message] of cases) {
    for (const round of [1, 2]) { // the second time, a cache hit where the first was answered
      const response = await fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body });
      const text = await response.text();
      assert.equal(response.status, status, `${name} (round ${round}): ${text.slice(0, 300)}`);
      if (message) assert.match(JSON.parse(text).error.message, message, name);
    }
  }
  const errors = proxy.logs.filter((line) => JSON.parse(line).level === "error");
  assert.deepEqual(errors, []);
});
