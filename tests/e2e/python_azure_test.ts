/**
 * Azure with the Python LLMProxy example's `api_version: "2024-02-15-preview"`: chat and embeddings keep the classic
 * layout the config asks for; the Responses API, which that version predates, reaches `/openai/v1/`. Through the
 * official openai client and the real proxy, against the simulated upstream in Azure's layouts.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const azure = (url: string, version: string) =>
  endpointYaml(url, {
    name: "az",
    model: "dep",
    extra: `          provider: azure\n          api_version: "${version}"`,
  });

for (
  const [version, responsesPath] of [
    ["2024-02-15-preview", "/openai/v1/responses"],
    ["2025-04-01-preview", "/openai/responses?api-version=2025-04-01-preview"],
  ]
) {
  test(`Azure api_version ${version}: chat and embeddings classic, Responses at ${responsesPath}`, async () => {
    await using sim = await SimUpstream.start({ name: "az", quiet: true });
    await using proxy = await startProxy(groupYaml([azure(sim.url, version)]));
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "x", maxRetries: 0 });

    const chat = await client.chat.completions.create({
      model: "gpt-test",
      messages: [{ role: "user", content: "c" }],
    });
    assert.match(chat.choices[0].message.content ?? "", /echo: c/);
    await client.embeddings.create({ model: "gpt-test", input: "e" });
    const created = await client.responses.create({ model: "gpt-test", input: "r" });
    assert.match(created.output_text, /echo: r/);
    const again = await client.responses.retrieve(created.id);
    assert.equal(again.id, created.id);
    const items = await client.responses.inputItems.list(created.id);
    assert.ok(items.data.length >= 1);

    const paths = sim.requests.map((request) => request.path + request.search);
    const classic = `?api-version=${version}`;
    const itemsPath = responsesPath.replace("responses", `responses/${created.id}/input_items`);
    assert.deepEqual(paths, [
      `/openai/deployments/dep/chat/completions${classic}`,
      `/openai/deployments/dep/embeddings${classic}`,
      responsesPath,
      responsesPath.replace("responses", `responses/${created.id}`),
      itemsPath,
    ]);
    assert.ok(sim.requests.every((request) => request.auth === "api-key"));
  });
}
