/**
 * What a client sends is repeated in an error message only in part: a 16 KB file id, a 200 KB model name, a long
 * path or content coding comes back as its first 100 characters, an ellipsis and its length (before: the first
 * 200 characters with no sign of the cut, or the whole value where nothing cut it).
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

test("ids, model names, paths and codings a client sends are echoed cut to 100 characters", {
  timeout: 30_000,
}, async () => {
  await using sim = await SimUpstream.start({ quiet: true, record: false });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)]), { logLevel: "error" });
  const long = (prefix: string, length: number) => prefix + "x".repeat(length - prefix.length);
  const json = { "content-type": "application/json" };
  const cases: [string, string, RequestInit, number, number][] = [
    ["a file id in the path", `/v1/files/${long("file-", 16_000)}`, {}, 404, 16_000],
    ["a file's content", `/v1/files/${long("file-", 16_000)}/content`, {}, 404, 16_000],
    ["a batch id in the path", `/v1/batches/${long("batch_", 16_000)}`, {}, 404, 16_000],
    ["a response id in the path", `/v1/responses/${long("resp_", 16_000)}`, {}, 404, 16_000],
    ["an unknown route", `/v1/${long("x", 16_000)}`, {}, 404, 16_004],
    [
      "a batch's input file",
      "/v1/batches",
      {
        method: "POST",
        headers: json,
        body: JSON.stringify({ input_file_id: long("file-", 16_000), endpoint: "/v1/chat/completions" }),
      },
      404,
      16_000,
    ],
    [
      "a model name",
      "/v1/chat/completions",
      {
        method: "POST",
        headers: json,
        body: JSON.stringify({ model: long("m", 200_000), messages: [{ role: "user", content: "hi" }] }),
      },
      404,
      200_000,
    ],
    [
      "a content coding",
      "/v1/chat/completions",
      { method: "POST", headers: { ...json, "content-encoding": long("gzip", 4_000) }, body: "\x1f\x8b" },
      415,
      4_000,
    ],
  ];
  for (const [what, path, init, status, length] of cases) {
    const response = await fetch(proxy.url + path, init);
    const text = await response.text();
    assert.equal(response.status, status, `${what}: ${text.slice(0, 300)}`);
    const { message } = JSON.parse(text).error;
    assert.ok(!/x{101}/.test(message), `${what}: a message of ${message.length} characters`);
    assert.ok(message.includes(`x... (${length} characters)`), `${what}: ${message}`);
  }
});
