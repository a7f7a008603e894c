/**
 * Resolved configuration: what the rest of the proxy reads after start-up.
 * `load.ts` turns a YAML file into this shape; nothing else reads files or the environment.
 */

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
}

export interface GroupConfig {
  readonly name: string;
  readonly endpoints: readonly EndpointConfig[];
}

export interface RedisSettings {
  readonly url?: string;
  readonly host?: string;
  readonly port?: number;
  readonly password?: string;
  readonly tls: boolean;
  readonly clusterNodes?: readonly string[];
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
  readonly cache: boolean;
  readonly cacheTtlSeconds: number;
  readonly namespace: string;
  readonly cacheMaxEntryBytes: number;
  readonly cacheMaxEntries: number;
  readonly cacheMaxBytes: number;
  readonly responseAffinityTtlSeconds: number;
  readonly responsesFailover: "replay" | "fail";
  readonly maxWaitForCapacityMs: number;
  readonly maxBodyBytes: number;
  readonly shutdownTimeoutMs: number;
  /** The HTTP client for upstream calls: the proxy's own HTTP/1.1 client, or Deno's fetch. */
  readonly upstreamClient: "http1" | "fetch";
  readonly apiKeys: readonly string[];
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
}

export interface IgnoredKey {
  /** Where in the file, e.g. `general_settings.http_max_connections`. */
  readonly key: string;
  /** Why it has no effect here. */
  readonly reason: string;
}
