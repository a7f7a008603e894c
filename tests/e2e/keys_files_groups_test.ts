/**
 * A file or batch held in a model group the caller's key may not use is answered like one that does not exist,
 * whether the proxy already knows which endpoint holds it or searches the group the header names.
 */

import assert from "node:assert/strict";
import OpenAI, { NotFoundError, toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const OPEN = "sk-open-group-91d3";
const SECRET = "sk-secret-group-0b7e";

test(
  "a key cannot read, delete or batch a file held in a group it may not use",
  { timeout: 20_000 },
  async () => {
    await using open = await SimUpstream.start({ name: "open", quiet: true });
    await using secret = await SimUpstream.start({ name: "secret", quiet: true });
    const yaml = [
      "model_groups:",
      "  - model_group: public",
      "    models:",
      endpointYaml(open.url, { name: "open" }),
      "  - model_group: private",
      "    models:",
      endpointYaml(secret.url, { name: "secret" }),
      "general_settings:",
      "  cache: false",
      "keys:",
      `  - {name: open, key: ${OPEN}, models: [public]}`,
      `  - {name: secret, key: ${SECRET}, models: [private]}`,
    ].join("\n") + "\n";
    await using proxy = await startProxy(yaml);
    const client = (key: string) => new OpenAI({ baseURL: proxy.url + "/v1", apiKey: key, maxRetries: 0 });

    const file = await client(SECRET).files.create({
      file: await toFile(new TextEncoder().encode('{"a":1}\n'), "in.jsonl"),
      purpose: "batch",
    });
    assert.equal((await client(SECRET).files.retrieve(file.id)).id, file.id);

    const read = await client(OPEN).files.retrieve(file.id).catch((e) => e);
    assert.ok(read instanceof NotFoundError, `expected a 404, got ${read}`);
    const searched = await client(OPEN).files.retrieve(file.id, {
      headers: { "x-llmproxy-model-group": "private" },
    })
      .catch((e) => e);
    assert.ok(searched instanceof NotFoundError, `expected a 404, got ${searched}`);
    const batch = await client(OPEN).batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    }).catch((e) => e);
    assert.ok(batch instanceof NotFoundError, `expected a 404, got ${batch}`);
    const removed = await client(OPEN).files.delete(file.id).catch((e) => e);
    assert.ok(removed instanceof NotFoundError, `expected a 404, got ${removed}`);
    assert.equal(secret.count("batches"), 0);
    assert.equal((await client(SECRET).files.retrieve(file.id)).id, file.id, "the file is still there");
  },
);
