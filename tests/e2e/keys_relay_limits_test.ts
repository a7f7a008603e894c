/**
 * A key's limits hold on the routes beyond generation too: moderations, images and uploads count against the
 * key's rpm like chat (they cost upstream money), while reading a file by id is not charged. Without this, a key
 * with `rpm: 2` could generate images without bound.
 */

import assert from "node:assert/strict";
import OpenAI, { RateLimitError, toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, startProxy } from "../_support/proxy.ts";
import { minuteClock } from "../_support/minute_clock.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-relay-limited-4c2a";

test(
  "rpm counts moderations, images and uploads; the request past it is a 429",
  { timeout: 20_000 },
  async () => {
    await using sim = await SimUpstream.start({ quiet: true });
    const yaml = [
      "model_groups:",
      "  - model_group: media",
      "    models:",
      endpointYaml(sim.url, { name: "east" }),
      "general_settings:",
      "  cache: false",
      "keys:",
      `  - {name: team, key: ${KEY}, rpm: 3}`,
    ].join("\n") + "\n";
    await using proxy = await startProxy(yaml, { clock: minuteClock() });
    const client = new OpenAI({ baseURL: proxy.url + "/v1", apiKey: KEY, maxRetries: 0 });

    const moderation = await client.moderations.create({ model: "media", input: "ok" }).withResponse();
    assert.equal(moderation.response.headers.get("x-ratelimit-remaining-requests"), "2");
    await client.images.generate({ model: "media", prompt: "a cat" });
    const file = await client.files.create({
      file: await toFile(new TextEncoder().encode('{"a":1}\n'), "in.jsonl"),
      purpose: "batch",
    });
    // Reading what a charged request made is not charged.
    assert.equal((await client.files.retrieve(file.id)).id, file.id);
    const refused = await client.moderations.create({ model: "media", input: "again" }).catch((e) => e);
    assert.ok(refused instanceof RateLimitError, `expected a 429, got ${refused}`);
    assert.match(refused.message, /requests per minute/);
    const before = sim.count("images/generations");
    const image = await client.images.generate({ model: "media", prompt: "a dog" }).catch((e) => e);
    assert.ok(image instanceof RateLimitError);
    assert.equal(sim.count("images/generations"), before, "a refused request never reaches the upstream");
  },
);
