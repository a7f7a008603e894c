import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const yaml = (url: string, listAliases: boolean) =>
  [
    "model_groups:",
    "  - model_group: gpt-4o",
    `    aliases: ["gpt-4o-2024-*", gpt-4o-latest]`,
    `    list_aliases: ${listAliases}`,
    "    models:",
    endpointYaml(url, { name: "a", model: "deployment-4o" }),
    "  - model_group: embed",
    "    models:",
    endpointYaml(url, { name: "e", model: "deployment-embed" }),
    "general_settings:",
    "  cache: false",
  ].join("\n") + "\n";

test("aliases and wildcards reach their group; /v1/models shows them only with list_aliases", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  for (const listAliases of [false, true]) {
    await using proxy = await startProxy(yaml(sim.url, listAliases));
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
    for (const model of ["gpt-4o", "gpt-4o-latest", "gpt-4o-2024-08-06"]) {
      const answer = await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "hi" }],
      });
      assert.ok(answer.choices[0].message.content);
      assert.equal((sim.last?.body as { model: string }).model, "deployment-4o", model);
    }
    const missing = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-2025", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(missing.status, 404);
    const message = (await missing.json()).error.message;
    assert.doesNotMatch(message, /\*/, "wildcards are not offered as names");
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    assert.deepEqual(ids, listAliases ? ["gpt-4o", "embed", "gpt-4o-latest"] : ["gpt-4o", "embed"]);
  }
});
