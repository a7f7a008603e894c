/**
 * Entra ID instead of API keys, through the real proxy against a token endpoint the test starts: client
 * credentials, managed identity (the instance metadata endpoint) and workload identity (a federated token file).
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";
import { startTokenServer } from "../_support/token_server.ts";
import { movableClock } from "../_support/entra_proxy.ts";

const SECRET = "entra-secret-value-9f8e";

const chat = (url: string) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
  }).then(async (response) => ({
    status: response.status,
    endpoint: response.headers.get("x-llmproxy-endpoint"),
    text: await response.text(),
  }));

/** An Azure endpoint (classic layout) on the sim, authenticated by `azureAd` lines under `params.azure_ad`. */
const azureEndpoint = (url: string, name: string, azureAd: string[], priority = 0) =>
  [
    `      - model: gpt-4o-deployment`,
    `        priority: ${priority}`,
    `        params:`,
    `          base_url: ${url}`,
    `          provider: azure`,
    `          api_version: "2024-10-21"`,
    `          name: ${name}`,
    `          azure_ad:`,
    ...azureAd.map((line) => `            ${line}`),
  ].join("\n");

const config = (endpoints: string[]) =>
  [
    "model_groups:",
    "  - model_group: gpt-test",
    "    models:",
    ...endpoints,
    "general_settings:",
    "  cache: false",
  ]
    .join("\n") + "\n";

test("client credentials: one token request for 20 concurrent requests, sent as a Bearer token, never logged", async () => {
  await using tokens = startTokenServer();
  await using sim = await SimUpstream.start({ name: "ptu", quiet: true });
  await using proxy = await startProxy(
    config([
      azureEndpoint(sim.url, "ptu", [
        "tenant_id: contoso.onmicrosoft.com",
        "client_id: app-id",
        "client_secret: os.environ/SECRET",
        `authority_host: ${tokens.url}`,
      ]),
    ]),
    { env: { SECRET } },
  );
  tokens.delayMs = 100;
  const answers = await Promise.all(Array.from({ length: 20 }, () => chat(proxy.url)));
  for (const answer of answers) assert.equal(answer.status, 200, answer.text);
  assert.equal(tokens.calls.length, 1);
  const [call] = tokens.calls;
  assert.equal(call.method, "POST");
  assert.equal(call.path, "/contoso.onmicrosoft.com/oauth2/v2.0/token");
  assert.deepEqual(call.params, {
    grant_type: "client_credentials",
    client_id: "app-id",
    client_secret: SECRET,
    scope: "https://cognitiveservices.azure.com/.default",
  });
  assert.equal(sim.last?.headers.authorization, "Bearer tok-1");
  assert.equal(sim.last?.headers["api-key"], undefined);
  const logs = proxy.logs.join("\n");
  assert.ok(!logs.includes(SECRET) && !logs.includes("tok-1"), "no secret or token in the logs");
  const stats = await (await fetch(`${proxy.url}/stats`)).text();
  assert.ok(!stats.includes(SECRET) && !stats.includes("tok-1"));
});

test("a token failure is the endpoint's failure: the request moves on, one clear log line; alone, a 503 saying why", async () => {
  await using tokens = startTokenServer();
  await using ptu = await SimUpstream.start({ name: "ptu", quiet: true });
  await using payg = await SimUpstream.start({ name: "payg", quiet: true });
  const entra = [
    "tenant_id: t1",
    "client_id: app-id",
    `client_secret: ${SECRET}`,
    `authority_host: ${tokens.url}`,
  ];
  tokens.failWith = 401;
  {
    await using proxy = await startProxy(config([
      azureEndpoint(ptu.url, "ptu", entra),
      endpointYaml(payg.url, { name: "payg", extra: "        priority: 1" }),
    ]));
    const answer = await chat(proxy.url);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.endpoint, "payg");
    assert.equal(ptu.count(), 0);
    const line = proxy.logs.find((l) => l.includes("Entra ID token request failed"));
    assert.ok(line, proxy.logs.join("\n"));
    const fields = JSON.parse(line);
    assert.equal(fields.endpoint, "ptu");
    assert.equal(fields.credential, "client_credentials");
    assert.equal(fields.error, "HTTP 401 invalid_client (AADSTS7000215)");
    assert.ok(!proxy.logs.join("\n").includes(SECRET));
  }
  {
    await using proxy = await startProxy(config([azureEndpoint(ptu.url, "ptu", entra)]));
    const answer = await chat(proxy.url);
    assert.equal(answer.status, 503);
    assert.match(
      JSON.parse(answer.text).error.message,
      /ptu: .*Entra ID token unavailable: HTTP 401 invalid_client/,
    );
    assert.ok(!answer.text.includes(SECRET));
  }
});

test("managed identity: a GET of the metadata endpoint with Metadata: true, the resource and a user-assigned id", async () => {
  await using tokens = startTokenServer();
  await using sim = await SimUpstream.start({ name: "vm", quiet: true });
  await using proxy = await startProxy(config([
    azureEndpoint(sim.url, "vm", [
      "managed_identity: true",
      "client_id: uai-client",
      `imds_endpoint: ${tokens.url}/metadata/identity/oauth2/token`,
    ]),
  ]));
  assert.equal((await chat(proxy.url)).status, 200);
  assert.equal((await chat(proxy.url)).status, 200);
  assert.equal(tokens.calls.length, 1);
  const [call] = tokens.calls;
  assert.equal(call.method, "GET");
  assert.equal(call.metadataHeader, "true");
  assert.deepEqual(call.params, {
    "api-version": "2018-02-01",
    resource: "https://cognitiveservices.azure.com",
    client_id: "uai-client",
  });
  assert.equal(sim.last?.headers.authorization, "Bearer tok-1");
});

test("workload identity: the federated token file is the client assertion, read again when the token is renewed", async () => {
  await using tokens = startTokenServer();
  await using sim = await SimUpstream.start({ name: "aks", quiet: true });
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/azure-identity-token`;
    await Deno.writeTextFile(file, "jwt-one\n");
    const clock = movableClock();
    await using proxy = await startProxy(
      config([azureEndpoint(sim.url, "aks", ["workload_identity: true"])]),
      {
        clock,
        env: {
          AZURE_TENANT_ID: "tenant-x",
          AZURE_CLIENT_ID: "wi-client",
          AZURE_FEDERATED_TOKEN_FILE: file,
          AZURE_AUTHORITY_HOST: tokens.url,
        },
      },
    );
    assert.equal((await chat(proxy.url)).status, 200);
    assert.deepEqual(tokens.calls[0].params, {
      grant_type: "client_credentials",
      client_id: "wi-client",
      scope: "https://cognitiveservices.azure.com/.default",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: "jwt-one",
    });
    assert.equal(tokens.calls[0].path, "/tenant-x/oauth2/v2.0/token");
    await Deno.writeTextFile(file, "jwt-two\n");
    clock.skip(3_600_000); // the token (an hour's) expired
    assert.equal((await chat(proxy.url)).status, 200);
    assert.equal(tokens.calls.length, 2);
    assert.equal(tokens.calls[1].params.client_assertion, "jwt-two");
    assert.equal(sim.last?.headers.authorization, "Bearer tok-2");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
