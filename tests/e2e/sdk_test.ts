/**
 * The official openai SDK against the real proxy in front of simulated OpenAI- and Azure-style upstreams.
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

for (const upstreamClient of ["http1", "fetch"]) {
  test(`chat, responses, embeddings and models through the SDK, with and without the /v1 prefix (upstream_client: ${upstreamClient})`, () =>
    everyRoute(upstreamClient));
}

async function everyRoute(upstreamClient: string) {
  await using sim = await SimUpstream.start({ name: "east", quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url, { name: "east", model: "gpt-4o-mini-2024" })], [
      `upstream_client: ${upstreamClient}`,
    ]),
  );
  assert.equal(proxy.services.upstream.kind, upstreamClient);
  for (const baseURL of [`${proxy.url}/v1`, proxy.url]) {
    const client = new OpenAI({ baseURL, apiKey: "client-key-not-forwarded" });

    const { data: completion, response } = await client.chat.completions
      .create({ model: "gpt-test", messages: [{ role: "user", content: "hello" }] })
      .withResponse();
    assert.match(completion.choices[0].message.content ?? "", /\[east\] echo: hello/);
    assert.equal(response.headers.get("x-llmproxy-endpoint"), "east");
    assert.equal(response.headers.get("x-llmproxy-attempts"), "1");
    assert.ok(response.headers.get("x-request-id"));

    const stream = await client.chat.completions.create({
      model: "gpt-test",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "stream it" }],
    });
    let text = "";
    let usage = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      usage += chunk.usage?.total_tokens ?? 0;
    }
    assert.match(text, /\[east\] echo: stream it/);
    assert.ok(usage > 0, "the include_usage chunk came through");

    const reply = await client.responses.create({ model: "gpt-test", input: "hi there" });
    assert.match(reply.output_text, /echo: hi there/);

    const events: string[] = [];
    const responseStream = client.responses.stream({ model: "gpt-test", input: "stream a response" });
    for await (const event of responseStream) events.push(event.type);
    const final = await responseStream.finalResponse();
    assert.match(final.output_text, /echo: stream a response/);
    assert.equal(events[0], "response.created");
    assert.equal(events.at(-1), "response.completed");
    assert.ok(events.includes("response.output_text.delta"));

    const embeddings = await client.embeddings.create({ model: "gpt-test", input: ["a", "b"] });
    assert.equal(embeddings.data.length, 2);
    assert.ok(embeddings.data[0].embedding.length > 0);

    const models = [];
    for await (const model of client.models.list()) models.push(model.id);
    assert.deepEqual(models, ["gpt-test"]);
  }
  // What reached the upstream: the endpoint's model and key, never the client's key.
  const chat = sim.requests.find((request) => request.path === "/v1/chat/completions")!;
  assert.equal((chat.body as { model: string }).model, "gpt-4o-mini-2024");
  assert.equal(chat.headers["authorization"], "Bearer sk-test-east");
  assert.ok(!JSON.stringify(sim.requests.map((r) => r.headers)).includes("client-key-not-forwarded"));
  if (upstreamClient === "http1") {
    assert.equal(
      proxy.services.upstream.connectionsOpened,
      1,
      "every call went over one kept-alive connection",
    );
    assert.equal(proxy.services.upstream.idleConnections, 1);
  } else assert.equal(proxy.services.upstream.connectionsOpened, 0, "fetch carried the calls");
}

test("unknown body fields pass through untouched and the proxy-only cache field is stripped", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url)]));
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "gpt-test",
      messages: [{ role: "user", content: "x" }],
      some_future_param: { nested: [1, 2, 3] },
      temperature: 0.2,
      cache: { "no-store": true },
    }),
  });
  await response.body?.cancel();
  assert.equal(response.status, 200);
  const body = sim.last!.body as Record<string, unknown>;
  assert.deepEqual(body.some_future_param, { nested: [1, 2, 3] });
  assert.equal(body.temperature, 0.2);
  assert.equal(body.model, "upstream-model");
  assert.equal("cache" in body, false);
});

test("Azure classic and v1 layouts: deployment path, api-version, api-key header", async () => {
  await using classic = await SimUpstream.start({ name: "classic", quiet: true });
  await using v1 = await SimUpstream.start({ name: "v1", quiet: true });
  const yaml = [
    "model_groups:",
    "  - model_group: azure-classic",
    "    models:",
    endpointYaml(classic.url, {
      name: "classic",
      model: "my-deployment",
      extra: '          provider: azure\n          api_version: "2024-10-21"',
    }),
    "  - model_group: azure-v1",
    "    models:",
    endpointYaml(v1.url, { name: "v1", model: "v1-deployment", extra: "          provider: azure" }),
  ].join("\n") + "\n";
  await using proxy = await startProxy(yaml);
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "x" });

  for (const model of ["azure-classic", "azure-v1"]) {
    const chat = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "hey" }],
    });
    assert.match(chat.choices[0].message.content ?? "", /echo: hey/);
    const stream = await client.chat.completions.create({
      model,
      stream: true,
      messages: [{ role: "user", content: "hey" }],
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    assert.match(text, /echo: hey/);
    const response = await client.responses.create({ model, input: "resp" });
    assert.match(response.output_text, /echo: resp/);
    const embedding = await client.embeddings.create({ model, input: "e" });
    assert.equal(embedding.data.length, 1);
  }

  const paths = classic.requests.map((request) => request.path + request.search);
  assert.ok(
    paths.includes("/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"),
    paths.join(),
  );
  assert.ok(paths.includes("/openai/deployments/my-deployment/embeddings?api-version=2024-10-21"));
  // 2024-10-21 predates Responses in the classic layout, so they take the v1 one.
  assert.ok(paths.includes("/openai/v1/responses"), paths.join());
  const responsesBody = classic.requests.find((request) => request.path === "/openai/v1/responses")!.body;
  assert.equal((responsesBody as { model: string }).model, "my-deployment");
  assert.ok(classic.requests.every((request) => request.auth === "api-key"));
  assert.ok(classic.requests.every((request) => request.headers["api-key"] === "sk-test-classic"));

  const v1Paths = v1.requests.map((request) => request.path);
  assert.deepEqual(v1Paths, [
    "/openai/v1/chat/completions",
    "/openai/v1/chat/completions",
    "/openai/v1/responses",
    "/openai/v1/embeddings",
  ]);
  assert.ok(v1.requests.every((request) => request.auth === "api-key"));
});
