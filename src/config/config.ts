import type { KeysConfig } from "../keys/config.ts";

/**
 * Resolved configuration: what the rest of the proxy reads after start-up.
 * `load.ts` turns a YAML file into this shape; nothing else reads files or the environment.
 */

import type { Limits } from "./limits.ts";

export type Provider = "openai" | "azure";

/** One upstream deployment inside a model group. */
export interface EndpointConfig {
  /** Stable id: `params.name`, else a short hash of (group, model, base URL, api version). */
  readonly id: string;
  /** The model group (the name clients send as `model`). */
  readonly group: string;
  /** Model name sent upstream (Azure: the deployment name). */
  readonly model: string;
  /** > 0: primary, share of traffic; 0: fallback only. */
  readonly weight: number;
  readonly provider: Provider;
  /** Base URL without a trailing slash, e.g. `https://res.openai.azure.com`. */
  readonly baseUrl: string;
  readonly apiKey: string;
  /** Azure classic layout when set; Azure v1 layout when absent. */
  readonly apiVersion?: string;
  /** Known requests-per-minute limit, enforced as a shared budget. */
  readonly rpm?: number;
  /** Known tokens-per-minute limit, enforced as a shared budget. */
  readonly tpm?: number;
  /** Upstream request timeout in milliseconds. */
  readonly timeoutMs: number;
  /** Extra headers sent upstream. */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Extra query parameters appended to every upstream URL (the Python LLMProxy's `params.default_query`, minus a
   * dated `api-version`, which becomes `apiVersion`). Absent when there are none.
   */
  readonly query?: Readonly<Record<string, string>>;
  /** Tier: lower is preferred (`priority`, default 0). Weight-0 endpoints come after every tier. */
  readonly priority?: number;
  /** Entra ID instead of `apiKey` (`params.azure_ad`). */
  readonly azureAd?: AzureAdConfig;
}

/** How an endpoint obtains Entra ID tokens; every field resolved at load time. */
export type AzureAdConfig =
  | {
    readonly kind: "client_credentials";
    readonly tenantId: string;
    readonly clientId: string;
    readonly clientSecret: string;
    readonly authorityHost: string;
    readonly scope: string;
  }
  | {
    readonly kind: "workload_identity";
    readonly tenantId: string;
    readonly clientId: string;
    /** The federated token file, read again at each token request (the kubelet rotates it). */
    readonly tokenFile: string;
    readonly authorityHost: string;
    readonly scope: string;
  }
  | {
    readonly kind: "managed_identity";
    /** A user-assigned identity; absent: the system-assigned one. */
    readonly clientId?: string;
    readonly imdsEndpoint: string;
    readonly scope: string;
  };

/** How a group chooses inside a tier (`routing`). */
export type RoutingStrategy = "weighted" | "least_busy" | "latency";

export interface GroupConfig {
  readonly name: string;
  readonly endpoints: readonly EndpointConfig[];
  /** Default `weighted`. */
  readonly routing?: RoutingStrategy;
  /** Extra names (`*` wildcards) the group answers to. */
  readonly aliases?: readonly string[];
  /** Whether `/v1/models` lists the aliases without wildcards too. */
  readonly listAliases?: boolean;
  /** Whether an Azure content-filter refusal is tried on another endpoint. */
  readonly contentFilterFallback?: boolean;
}

export interface RedisSettings {
  readonly url?: string;
  readonly host?: string;
  readonly port?: number;
  readonly password?: string;
  readonly tls: boolean;
  readonly clusterNodes?: readonly string[];
  readonly sentinels?: readonly string[];
  readonly sentinelMaster?: string;
  /** `redis_max_wait` in ms: the most a store call waits on Redis before local state serves it. */
  readonly maxWaitMs?: number;
  /** PEM files for TLS (read when the store connects). */
  readonly tlsFiles?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

export interface Settings {
  readonly host: string;
  readonly port: number;
  readonly httpTimeoutMs: number;
  readonly numRetries: number;
  readonly allowedFails: number;
  readonly cooldownMs: number;
  /** Absent: in-memory state. */
  readonly redis?: RedisSettings;
  /** `general_settings.reuse_port`: listen with SO_REUSEPORT, so several processes share the port. */
  readonly reusePort: boolean;
  readonly cache: boolean;
  readonly cacheTtlSeconds: number;
  readonly namespace: string;
  readonly cacheMaxEntryBytes: number;
  readonly cacheMaxEntries: number;
  readonly cacheMaxBytes: number;
  readonly responseAffinityTtlSeconds: number;
  /** Responses ids (each with its endpoint, owner and turn) and reasoning items kept in this process at most. */
  readonly responseAffinityMaxEntries: number;
  /** Files' and batches' records (endpoint and owner) kept in this process at most. */
  readonly objectRecordsMaxEntries: number;
  /** List cursors kept in this process at most (and 1 KiB of key and value each on average). */
  readonly listCursorsMaxEntries: number;
  readonly responsesFailover: "replay" | "fail";
  readonly maxWaitForCapacityMs: number;
  readonly maxBodyBytes: number;
  /** Objects, arrays and object members a JSON request body may hold. */
  readonly maxBodyItems: number;
  /** Connection, timeout and memory limits (`limits.ts`). */
  readonly limits: Limits;
  readonly shutdownTimeoutMs: number;
  /** The HTTP client for upstream calls: the proxy's own HTTP/1.1 client, or Deno's fetch. */
  readonly upstreamClient: "http1" | "fetch";
  readonly apiKeys: readonly string[];
  /** Active health probes every this many ms; 0: off. */
  readonly healthProbeIntervalMs?: number;
  readonly adminKeys: readonly string[];
  /** Add the Python LLMProxy's `_proxy_cache_hit` to non-streamed JSON answers. */
  readonly pythonCacheMarker: boolean;
}

export interface Config {
  /** Path of the file this was loaded from (for messages). */
  readonly source: string;
  readonly groups: readonly GroupConfig[];
  readonly settings: Settings;
  /** Keys of the file that the Python LLMProxy reads and this proxy accepts without using: one warning each. */
  readonly ignored: readonly IgnoredKey[];
  /** Named client keys, prices and the usage stream (`keys:`, `prices:`, `general_settings.usage_stream`). */
  readonly keys: KeysConfig;
}

export interface IgnoredKey {
  /** Where in the file, e.g. `general_settings.http_max_connections`. */
  readonly key: string;
  /** Why it has no effect here. */
  readonly reason: string;
}
