/**
 * A Python LLMProxy config's `usage_stream` block, as it wrote it: no `keys:` (that version had none) and no
 * `enabled` (its default was true once the block is there). Every finished request reaches the Redis Stream its
 * billing pipeline reads, under the key name `anonymous`; `enabled: false` turns it off. Before, such a config
 * loaded without a word and wrote nothing: the stream was off without `enabled: true`, and with it, usage was
 * counted only when keys were configured.
 */

import assert from "node:assert/strict";
import OpenAI, { toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { test } from "../_support/test.ts";
import { delay } from "../_support/proxy.ts";

const config = (sim: string, redisPort: number, block: string) =>
  `model_groups:
  - model_group: gpt-4o-mini
    models:
      - model: gpt-4o-mini
        weight: 1
        params:
          api_key: test-key-1
          base_url: ${sim}
general_settings:
  bind_port: 5000
  redis_host: 127.0.0.1
  redis_port: ${redisPort}
  redis_password: ""
  cache: false
  usage_stream:
${block}`;

test("a Python config's usage_stream block, with no keys and no `enabled`, gets every finished request", {
  ignore: !hasRedis,
}, async () => {
  await using redis = await startRedis();
  await using sim = await SimUpstream.start({ quiet: true });
  const cases = [
    { block: "    stream_key: py-usage\n    max_len: 1000\n    caller_headers: [x-agent]\n", entries: 3 },
    { block: "    enabled: false\n    stream_key: py-usage-off\n", entries: 0 },
  ];
  for (const { block, entries } of cases) {
    const key = /stream_key: (\S+)/.exec(block)![1];
    await using proxy = await startProxy(config(sim.url, redis.port, block), { logLevel: "error" });
    const client = new OpenAI({ baseURL: proxy.url, apiKey: "unused", maxRetries: 0 });
    await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
    });
    await client.embeddings.create({ model: "gpt-4o-mini", input: "hi" });
    await client.audio.transcriptions.create({
      model: "gpt-4o-mini",
      file: await toFile(new Uint8Array(2000), "a.wav"),
    });
    // Stream writes are made after the answer went out.
    let length = "0";
    for (let i = 0; i < 40 && Number(length) < entries; i++) {
      await delay(50);
      length = await redis.command("XLEN", key) ?? "0";
    }
    await delay(entries === 0 ? 300 : 0);
    assert.equal(Number(await redis.command("XLEN", key)), entries, `${key}: entries in the stream`);
  }
});
