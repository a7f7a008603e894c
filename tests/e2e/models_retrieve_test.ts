/**
 * `client.models.retrieve(name)` (`GET /v1/models/{model}`), as tools call it to check a model before using it: a
 * group or an alias it answers to is a model object; anything else, or a group the key may not use, is OpenAI's 404
 * for a model. Before, the route was not served: every retrieve was a 404 "No route".
 */

import assert from "node:assert/strict";
import OpenAI, { NotFoundError } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

test("models.retrieve: a group or alias is a model; another name, or another team's group, is a 404", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(
    [
      "model_groups:",
      "  - model_group: gpt-4o",
      `    aliases: ["gpt-4o-2024-*"]`,
      "    models:",
      endpointYaml(sim.url, { name: "one" }),
      "  - model_group: team/secret",
      "    models:",
      endpointYaml(sim.url, { name: "two" }),
      "general_settings:",
      "  admin_keys: [sk-admin-models]",
      "keys:",
      "  - {name: team-a, key: sk-team-a-models, models: [gpt-4o]}",
    ].join("\n") + "\n",
    { logLevel: "error" },
  );
  const client = (apiKey: string) => new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey, maxRetries: 0 });
  const admin = client("sk-admin-models"), team = client("sk-team-a-models");

  for (const name of ["gpt-4o", "gpt-4o-2024-08-06"]) {
    const model = await team.models.retrieve(name);
    assert.deepEqual({ id: model.id, object: model.object, owned_by: model.owned_by }, {
      id: name,
      object: "model",
      owned_by: "llmproxy",
    });
  }
  // A name with a slash is one model id.
  assert.equal((await admin.models.retrieve("team/secret")).id, "team/secret");
  for (const [who, name] of [[team, "team/secret"], [admin, "gpt-5"], [team, "x".repeat(300)]] as const) {
    const error = await who.models.retrieve(name).then(() => null, (error) => error);
    assert.ok(error instanceof NotFoundError, `${name.slice(0, 20)}: ${error}`);
    assert.equal(error.code, "model_not_found");
    assert.ok(!error.message.includes("x".repeat(101)), "the name is cut in the message");
  }
  const metrics =
    await (await fetch(`${proxy.url}/metrics`, { headers: { authorization: "Bearer sk-admin-models" } }))
      .text();
  assert.match(metrics, /llmproxy_requests_total\{route="models",[^}]*status="404"\} 3/);
});
