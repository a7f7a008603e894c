/**
 * `/v1/responses/{id}` calls go through the same attempts as generation requests: the owner's failures count
 * against its health (and show in `/stats` and `/metrics`), a failure is the proxy's one error envelope naming the
 * owner, a 404 from the owner passes through as a real "not found", and none of them moves to another endpoint.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

test("an owner's 500 on GET /responses/{id} is a 503 naming it, counted in its health; its 404 passes through", async () => {
  await using east = await SimUpstream.start({ name: "east", quiet: true });
  await using west = await SimUpstream.start({ name: "west", quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(east.url, { name: "east" }), endpointYaml(west.url, { name: "west" })], [
      "allowed_fails: 5",
    ]),
  );
  const sims: Record<string, SimUpstream> = { east, west };
  const created = await fetch(`${proxy.url}/v1/responses`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", input: "keep me" }),
  });
  const { id } = await created.json();
  const owner = created.headers.get("x-llmproxy-endpoint")!;
  const other = owner === "east" ? "west" : "east";
  const callsElsewhere = sims[other].count();

  sims[owner].next({ kind: "status", status: 500 });
  const failed = await fetch(`${proxy.url}/v1/responses/${id}`);
  assert.equal(failed.status, 503);
  const envelope = await failed.json();
  assert.equal(envelope.error.code, "no_healthy_endpoint");
  assert.match(envelope.error.message, new RegExp(`\\(${owner}\\) could not answer: HTTP 500`));

  const stats = await (await fetch(`${proxy.url}/stats`)).json();
  const ownerStats = stats.endpoints.find((endpoint: { id: string }) => endpoint.id === owner);
  assert.equal(ownerStats.consecutive_failures, 1, "the owner's failure was counted in its health");
  const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
  assert.match(metrics, new RegExp(`llmproxy_upstream_latency_seconds_count\\{[^}]*endpoint="${owner}"`));

  sims[owner].next({ kind: "status", status: 404 });
  const missing = await fetch(`${proxy.url}/v1/responses/${id}`);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("x-llmproxy-endpoint"), owner);
  assert.equal((await missing.json()).error.type, "invalid_request_error");

  const fetched = await fetch(`${proxy.url}/v1/responses/${id}`);
  assert.equal(fetched.status, 200);
  assert.equal((await fetched.json()).id, id);
  assert.equal(sims[other].count(), callsElsewhere, "no call ever went to the other endpoint");
  // Counted under the group of the endpoint that answered, like the request that made the response.
  const counted = await (await fetch(`${proxy.url}/metrics`)).text();
  for (const status of [200, 404]) {
    assert.match(
      counted,
      new RegExp(
        `llmproxy_requests_total\\{route="responses_item",group="gpt-test",endpoint="${owner}",status="${status}"\\} 1`,
      ),
    );
  }
});
