import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/parse.ts";
import { test } from "../_support/test.ts";

const AZURE = "https://res.openai.azure.com";
const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

function errorOf(yaml: string, env: Record<string, string> = {}): string {
  try {
    parseConfig(yaml, "r.yaml", envOf(env));
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("expected a config error");
}

const withAd = (ad: string, base = AZURE) =>
  `model_groups:\n  - model_group: g\n    models:\n      - model: m\n        params:\n          base_url: ${base}\n          azure_ad: ${ad}\n`;

test("routing keys default to weighted, no aliases, no probes, priority 0", () => {
  const config = parseConfig(withAd("{ managed_identity: true }"), "r.yaml", envOf({}));
  const [group] = config.groups;
  assert.equal(group.routing, "weighted");
  assert.deepEqual(group.aliases, []);
  assert.equal(group.listAliases, false);
  assert.equal(group.contentFilterFallback, false);
  assert.equal(group.endpoints[0].priority, 0);
  assert.equal(config.settings.healthProbeIntervalMs, 0);
});

test("group routing keys and endpoint priority resolve; unknown strategies are named", () => {
  const yaml = `model_groups:
  - model_group: g
    routing: least_busy
    aliases: "gpt-4o-*, latest"
    list_aliases: "yes"
    content_filter_fallback: true
    models:
      - { model: m, priority: -2, params: { api_key: k } }
general_settings: { health_probe_interval: 2.5 }
`;
  const config = parseConfig(yaml, "r.yaml", envOf({}));
  const [group] = config.groups;
  assert.equal(group.routing, "least_busy");
  assert.deepEqual(group.aliases, ["gpt-4o-*", "latest"]);
  assert.equal(group.listAliases, true);
  assert.equal(group.contentFilterFallback, true);
  assert.equal(group.endpoints[0].priority, -2);
  assert.equal(config.settings.healthProbeIntervalMs, 2500);
  assert.match(
    errorOf(yaml.replace("least_busy", "fastest")),
    /model_groups\[0\]\.routing must be one of "weighted", "least_busy", "latency", got "fastest"/,
  );
  assert.match(errorOf(yaml.replace("priority: -2", "priority: 1.5")), /priority must be an integer/);
});

test("an alias may not repeat a group name or another alias", () => {
  const yaml = `model_groups:
  - { model_group: a, aliases: [x], models: [{ model: m, params: { api_key: k } }] }
  - { model_group: b, aliases: [a, x, "x-*"], models: [{ model: m, params: { api_key: k } }] }
`;
  const message = errorOf(yaml);
  assert.match(message, /model_groups\[1\]\.aliases\[0\] must be unique, got "a" \(already group 'a'\)/);
  assert.match(
    message,
    /model_groups\[1\]\.aliases\[1\] must be unique, got "x" \(already an alias of 'a'\)/,
  );
  assert.doesNotMatch(message, /x-\*/);
});

test("azure_ad: client credentials from the file or the AZURE_* variables; no api_key needed", () => {
  const config = parseConfig(
    withAd("{ tenant_id: contoso.onmicrosoft.com, client_id: app, client_secret: os.environ/S }"),
    "r.yaml",
    envOf({ S: "s3cret" }),
  );
  const [endpoint] = config.groups[0].endpoints;
  assert.deepEqual(endpoint.azureAd, {
    kind: "client_credentials",
    tenantId: "contoso.onmicrosoft.com",
    clientId: "app",
    clientSecret: "s3cret",
    authorityHost: "https://login.microsoftonline.com",
    scope: "https://cognitiveservices.azure.com/.default",
  });
  assert.equal(endpoint.apiKey, "");
  const fromEnv = parseConfig(
    withAd("{}"),
    "r.yaml",
    envOf({
      AZURE_TENANT_ID: "t",
      AZURE_CLIENT_ID: "c",
      AZURE_CLIENT_SECRET: "s",
      AZURE_AUTHORITY_HOST: "http://127.0.0.1:9/",
    }),
  ).groups[0].endpoints[0].azureAd;
  assert.deepEqual(fromEnv && { ...fromEnv }, {
    kind: "client_credentials",
    tenantId: "t",
    clientId: "c",
    clientSecret: "s",
    authorityHost: "http://127.0.0.1:9",
    scope: "https://cognitiveservices.azure.com/.default",
  });
});

test("azure_ad: managed identity and workload identity; missing pieces and misuse are named, secrets never", () => {
  const mi = parseConfig(
    withAd("{ managed_identity: true, client_id: uai, imds_endpoint: 'http://127.0.0.1:7/token' }"),
    "r.yaml",
    envOf({}),
  ).groups[0].endpoints[0].azureAd;
  assert.deepEqual(mi, {
    kind: "managed_identity",
    clientId: "uai",
    imdsEndpoint: "http://127.0.0.1:7/token",
    scope: "https://cognitiveservices.azure.com/.default",
  });
  const wi = parseConfig(
    withAd("{ workload_identity: true }"),
    "r.yaml",
    envOf({
      AZURE_TENANT_ID: "t",
      AZURE_CLIENT_ID: "c",
      AZURE_FEDERATED_TOKEN_FILE: "/var/run/token",
    }),
  ).groups[0].endpoints[0].azureAd;
  assert.equal(wi?.kind, "workload_identity");
  assert.equal(wi?.kind === "workload_identity" && wi.tokenFile, "/var/run/token");

  const missing = errorOf(withAd("{ client_secret: hunter2 }"));
  assert.match(missing, /azure_ad\.tenant_id is required \(or set AZURE_TENANT_ID\)/);
  assert.match(missing, /azure_ad\.client_id is required \(or set AZURE_CLIENT_ID\)/);
  assert.ok(!missing.includes("hunter2"), missing);
  assert.match(
    errorOf(withAd("{ workload_identity: true, tenant_id: t, client_id: c }")),
    /federated_token_file is required \(or set AZURE_FEDERATED_TOKEN_FILE\)/,
  );
  assert.match(
    errorOf(withAd("{ managed_identity: true, workload_identity: true }")),
    /must set only one of managed_identity and workload_identity/,
  );
  assert.match(
    errorOf(withAd("{ managed_identity: true }", "https://api.openai.com")),
    /azure_ad needs an Azure endpoint \(provider: azure\), got openai/,
  );
  assert.match(
    errorOf(withAd("{ managed_identity: true, tenantid: x }")),
    /azure_ad\.tenantid is not a known key \(did you mean 'tenant_id'\?\)/,
  );
});
