/**
 * Files and batches pass the client's query on (paging), but never its `api-version`: the endpoint's own is the
 * only one an Azure endpoint gets, as on the Responses routes.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const azure = "          provider: azure\n          api_version: 2025-04-01-preview";

test(
  "a client's api-version never reaches the upstream on the files and batches routes",
  { timeout: 20_000 },
  async () => {
    await using sim = await SimUpstream.start({ name: "azure", quiet: true });
    await using proxy = await startProxy(
      groupYaml([endpointYaml(sim.url, { name: "azure", model: "dep-a", extra: azure })], [], "media"),
    );
    const form = new FormData();
    form.append("purpose", "batch");
    form.append("file", new Blob(['{"a":1}\n']), "in.jsonl");
    const created = await fetch(`${proxy.url}/v1/files`, {
      method: "POST",
      headers: { authorization: "Bearer k" },
      body: form,
    });
    assert.equal(created.status, 200, await created.clone().text());
    const { id } = await created.json();
    for (
      const path of ["/v1/files?limit=2&api-version=2020-01-01", `/v1/files/${id}?api-version=2020-01-01`]
    ) {
      const response = await fetch(proxy.url + path, { headers: { authorization: "Bearer k" } });
      assert.equal(response.status, 200, await response.text());
      const sent = sim.requests.at(-1)!;
      const versions = new URLSearchParams(sent.search).getAll("api-version");
      assert.deepEqual(versions, ["2025-04-01-preview"], `${path} sent ${sent.search}`);
    }
    assert.match(sim.requests.find((r) => r.method === "GET" && !r.path.includes(id))!.search, /limit=2/);
  },
);
