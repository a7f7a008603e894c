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

test(
  "big bodies of many members: token arrays and long histories pass; past max_body_items a 400, the check kept",
  {
    timeout: 60_000,
  },
  async () => {
    await using sim = await SimUpstream.start({ quiet: true, record: false });
    await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)], ["cache: true"]), {
      logLevel: "warn",
    });
    const post = async (route: string, body: string) => {
      const response = await fetch(`${proxy.url}/v1/${route}`, { method: "POST", body });
      return { status: response.status, text: await response.text() };
    };
    // 8.8 MB: 1,500 token arrays of 1,000 tokens (an embeddings batch); 9.7 MB: 20,000 messages (60,001 items).
    const tokens = Array.from(
      { length: 1500 },
      (_, j) => Array.from({ length: 1000 }, (_, i) => (i * 7919 + j) % 1e5),
    );
    const history = Array.from({ length: 20_000 }, (_, i) => ({
      role: i % 2 ? "assistant" : "user",
      content: `${"word ".repeat(90)}${i}`,
    }));
    const legit: [string, string][] = [
      ["embeddings", JSON.stringify({ model: "gpt-test", input: tokens })],
      ["chat/completions", JSON.stringify({ model: "gpt-test", messages: history })],
    ];
    for (const [route, body] of legit) {
      for (const round of [1, 2]) {
        const { status, text } = await post(route, body);
        assert.equal(status, 200, `${route} (round ${round}): ${text.slice(0, 300)}`);
      }
    }
    // 99,991 members and the rest of the body (3 objects, 1 array, 5 members) are 100,000: the most accepted.
    const members = (n: number) => Array.from({ length: n }, (_, i) => `"m${i}":0`).join(",");
    const chat = (extra: string) =>
      `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],${extra}}`;
    assert.equal((await post("chat/completions", chat(`"metadata_x":{${members(99_991)}}`))).status, 200);
    const over = await post("chat/completions", chat(`"metadata_x":{${members(99_992)}}`));
    assert.equal(over.status, 400, over.text.slice(0, 300));
    assert.deepEqual(JSON.parse(over.text).error, {
      message:
        "Request body holds more than 100000 JSON objects, arrays and object members (the limit of this proxy)",
      type: "invalid_request_error",
      param: null,
      code: "request_too_complex",
    });
    // A scanned body still gets the nesting and number checks' 400s.
    const padding = `"pad":"${"x".repeat(300_000)}"`;
    const deep = await post("chat/completions", chat(`${padding},"x":${"[".repeat(200)}${"]".repeat(200)}`));
    assert.match(JSON.parse(deep.text).error.message, /nested more than 128 levels deep \(at 'x/);
    const huge = await post("chat/completions", chat(`${padding},"x":[1,-1e999]`));
    assert.match(JSON.parse(huge.text).error.message, /number out of range at 'x\[1\]'/);
    const errors = proxy.logs.filter((line) => JSON.parse(line).level === "error");
    assert.deepEqual(errors, []);
  },
);

test(
  "max_body_items sets the cap: 1,000 items pass, 1,001 get the 400 naming it",
  { timeout: 30_000 },
  async () => {
    await using sim = await SimUpstream.start({ quiet: true, record: false });
    await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)], ["max_body_items: 1000"]));
    // 991 members and the rest of the body (3 objects, 1 array, 5 members) are 1,000 items.
    const body = (members: number) =>
      `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"metadata_x":{${
        Array.from({ length: members }, (_, i) => `"m${i}":0`).join(",")
      }}}`;
    const ok = await fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body: body(991) });
    assert.equal(ok.status, 200, await ok.text());
    const over = await fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", body: body(992) });
    assert.equal(over.status, 400);
    assert.match((await over.json()).error.message, /more than 1000 JSON objects, arrays and object members/);
  },
);
