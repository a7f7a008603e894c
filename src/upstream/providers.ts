/**
 * How each provider wants to be called: the URL layout and the auth header. A table of small functions, one row
 * per provider, so adding one means adding a row.
 */

import type { HeaderReader } from "../core/header_reader.ts";
import type { EndpointConfig, Provider } from "../config/config.ts";
import { copyClientHeaders } from "./forwarding.ts";

interface ProviderRules {
  /** Full upstream URL for `path` (below `/v1`, e.g. `chat/completions` or `responses/resp_1/input_items`). */
  url(endpoint: EndpointConfig, path: string): string;
  /** The provider's auth header: its name and value. */
  auth(endpoint: EndpointConfig): readonly [string, string];
}

const DEPLOYMENT_ROUTES = new Set([
  "chat/completions",
  "embeddings",
  "completions",
  "audio/transcriptions",
  "audio/translations",
  "audio/speech",
  "images/generations",
  "images/edits",
]);

const openai: ProviderRules = {
  url(endpoint, path) {
    const base = endpoint.baseUrl.endsWith("/v1") ? endpoint.baseUrl : `${endpoint.baseUrl}/v1`;
    return `${base}/${path}`;
  },
  auth: (endpoint) => ["authorization", `Bearer ${endpoint.apiKey}`],
};

/**
 * Routes the classic Azure layout (`?api-version=` dated) gained late, with the first api version that has them
 * there (Responses: 2025-03-01-preview). Under an older dated api version they exist only in the v1 layout
 * (`/openai/v1/...`, which takes no api version), so they go there: a config written for chat with an older version,
 * like the Python LLMProxy's example `2024-02-15-preview`, keeps working for them.
 */
const CLASSIC_SINCE: readonly (readonly [route: string, since: string])[] = [["responses", "2025-03-01"]];

/** Whether `path` must take the v1 layout although the endpoint names an api version. */
function azureV1Only(path: string, apiVersion: string): boolean {
  const dated = /^(\d{4}-\d{2}-\d{2})/.exec(apiVersion)?.[1];
  if (dated === undefined) return false; // not a dated version (e.g. "preview"): as configured
  const route = CLASSIC_SINCE.find(([name]) => path === name || path.startsWith(`${name}/`));
  return route !== undefined && dated < route[1];
}

const azure: ProviderRules = {
  url(endpoint, path) {
    const base = endpoint.baseUrl.replace(/\/openai(\/v1)?$/, "");
    if (!endpoint.apiVersion || azureV1Only(path, endpoint.apiVersion)) return `${base}/openai/v1/${path}`;
    const version = `api-version=${encodeURIComponent(endpoint.apiVersion)}`;
    if (DEPLOYMENT_ROUTES.has(path)) {
      return `${base}/openai/deployments/${encodeURIComponent(endpoint.model)}/${path}?${version}`;
    }
    return `${base}/openai/${path}?${version}`;
  },
  auth: (endpoint) => ["api-key", endpoint.apiKey],
};

const PROVIDERS: Readonly<Record<Provider, ProviderRules>> = { openai, azure };

export function upstreamUrl(endpoint: EndpointConfig, path: string): string {
  const url = PROVIDERS[endpoint.provider].url(endpoint, path);
  if (!endpoint.query) return url;
  const extra = new URLSearchParams(endpoint.query).toString();
  return extra === "" ? url : `${url}${url.includes("?") ? "&" : "?"}${extra}`;
}

/**
 * Builds the upstream request headers from the client's allowed ones (`forwarding.ts`), the endpoint's extras and
 * the endpoint's key, as a plain
 * record: fetch validates it once, where a `Headers` object would be validated on every `set` and again by fetch.
 */
export function upstreamHeaders(
  endpoint: EndpointConfig,
  client: HeaderReader,
  requestId: string,
  /** An Entra ID token: sent as `Authorization: Bearer` instead of the endpoint's key. */
  bearer?: string,
  /** The body's content type. */
  contentType = "application/json",
): Record<string, string> {
  const headers: Record<string, string> = {};
  copyClientHeaders(client, headers);
  for (const name in endpoint.headers) headers[name.toLowerCase()] = endpoint.headers[name];
  headers["content-type"] = contentType;
  headers["x-request-id"] = requestId;
  if (bearer !== undefined) {
    headers.authorization = `Bearer ${bearer}`;
    return headers;
  }
  const [name, value] = PROVIDERS[endpoint.provider].auth(endpoint);
  headers[name] = value;
  return headers;
}
