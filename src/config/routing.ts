/**
 * Resolution of the routing keys of a config file: a group's strategy and aliases, an endpoint's Entra ID
 * credentials (with the `AZURE_*` environment variables the Azure SDKs read as defaults). Problems are pushed as
 * readable lines; secrets never appear in them.
 */

import type { AzureAdConfig, GroupConfig, Provider } from "./config.ts";
import type { ConfigFile } from "./schema.ts";
import { type Path, type Problem, problemAt } from "./messages.ts";

type EnvLookup = (name: string) => string | undefined;
type GroupFile = ConfigFile["model_groups"][number];
type AzureAdFile = NonNullable<GroupFile["models"][number]["params"]["azure_ad"]>;

export const DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com";
export const DEFAULT_IMDS_ENDPOINT = "http://169.254.169.254/metadata/identity/oauth2/token";
export const DEFAULT_AZURE_SCOPE = "https://cognitiveservices.azure.com/.default";

/** The routing fields of a resolved group. */
export function groupRouting(group: GroupFile): Omit<GroupConfig, "name" | "endpoints"> {
  return {
    routing: group.routing,
    aliases: group.aliases,
    listAliases: group.list_aliases,
    contentFilterFallback: group.content_filter_fallback,
  };
}

/** `params.azure_ad` resolved, or undefined when absent (problems are pushed, the result is then unusable). */
export function resolveAzureAd(
  ad: AzureAdFile | undefined,
  provider: Provider,
  path: Path,
  env: EnvLookup,
  problems: Problem[],
): AzureAdConfig | undefined {
  if (!ad) return undefined;
  const at = [...path, "params", "azure_ad"];
  if (provider !== "azure") {
    problems.push(problemAt(at, ` needs an Azure endpoint (provider: azure), got ${provider}`));
  }
  if (ad.managed_identity && ad.workload_identity) {
    problems.push(problemAt(at, " must set only one of managed_identity and workload_identity"));
  }
  const scope = ad.scope ?? DEFAULT_AZURE_SCOPE;
  if (ad.managed_identity) {
    return {
      kind: "managed_identity",
      ...(ad.client_id !== undefined ? { clientId: ad.client_id } : {}),
      imdsEndpoint: ad.imds_endpoint ?? DEFAULT_IMDS_ENDPOINT,
      scope,
    };
  }
  const required = (value: string | undefined, key: string, variable: string): string => {
    const found = value ?? nonEmpty(env(variable));
    if (found === undefined) problems.push(problemAt([...at, key], ` is required (or set ${variable})`));
    return found ?? "";
  };
  const tenantId = required(ad.tenant_id, "tenant_id", "AZURE_TENANT_ID");
  const clientId = required(ad.client_id, "client_id", "AZURE_CLIENT_ID");
  const authorityHost = (ad.authority_host ?? nonEmpty(env("AZURE_AUTHORITY_HOST")) ?? DEFAULT_AUTHORITY_HOST)
    .replace(/\/+$/, "");
  if (!/^[A-Za-z0-9.-]+$/.test(tenantId) && tenantId !== "") {
    problems.push(
      problemAt(
        [...at, "tenant_id"],
        ` must be a tenant id or domain, got ${JSON.stringify(tenantId.slice(0, 80))}`,
      ),
    );
  }
  if (ad.workload_identity) {
    const tokenFile = required(ad.federated_token_file, "federated_token_file", "AZURE_FEDERATED_TOKEN_FILE");
    return { kind: "workload_identity", tenantId, clientId, tokenFile, authorityHost, scope };
  }
  const clientSecret = required(ad.client_secret, "client_secret", "AZURE_CLIENT_SECRET");
  return { kind: "client_credentials", tenantId, clientId, clientSecret, authorityHost, scope };
}

/**
 * Every name a client may send must lead to one group: an alias may not repeat a group name or another alias.
 * (Two wildcards may overlap; the first in file order wins.)
 */
export function checkAliases(groups: readonly GroupConfig[], problems: Problem[]): void {
  const owner = new Map<string, string>(groups.map((group) => [group.name, `group '${group.name}'`]));
  groups.forEach((group, g) => {
    (group.aliases ?? []).forEach((alias, a) => {
      const first = owner.get(alias);
      if (first !== undefined) {
        problems.push(
          problemAt(
            ["model_groups", g, "aliases", a],
            ` must be unique, got ${JSON.stringify(alias)} (already ${first})`,
          ),
        );
      } else owner.set(alias, `an alias of '${group.name}'`);
    });
  });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
