/**
 * What of a client's request may reach an upstream: an allow-list of headers and, per route, of query parameters.
 * Everything else the client sends stays at the proxy, so a client cannot pick the organization or project that is
 * billed, smuggle routing headers to a front end, or override the endpoint's `api-version`.
 */

import type { HeaderReader } from "../core/header_reader.ts";
import { headerPairs } from "../http/header_pairs.ts";

/**
 * Client headers passed on (lower-case). The endpoint's configured headers, `content-type`, `x-request-id` and the
 * endpoint's key are added after these by `upstreamHeaders`; `OpenAI-Organization` and `OpenAI-Project` come only
 * from the endpoint's config.
 */
export const FORWARDED_CLIENT_HEADERS: ReadonlySet<string> = new Set([
  "accept",
  "user-agent",
  "openai-beta",
]);

/** Header name prefixes passed on: the OpenAI SDKs' own description of themselves (`x-stainless-lang`, ...). */
const FORWARDED_PREFIX = "x-stainless-";

/**
 * Copies the allowed client headers into `into` (which holds none of them yet). Headers named in the client's
 * `Connection` header are hop-by-hop (RFC 9110, section 7.6.1) and never pass, even when allowed.
 */
export function copyClientHeaders(client: HeaderReader, into: Record<string, string>): void {
  const connection = client.get("connection");
  const hopByHop = connection === null ? undefined : new Set(
    connection.toLowerCase().split(",").map((name) => name.trim()),
  );
  // Not forEach: iterating a served request's Headers leaves two copies of its list on it for the stream's life.
  // Indexed, not destructured: an iterator and its results per pair otherwise (every upstream call).
  const pairs = headerPairs(client);
  for (let i = 0; i < pairs.length; i++) {
    const name = pairs[i][0].toLowerCase();
    const value = pairs[i][1];
    if (!FORWARDED_CLIENT_HEADERS.has(name) && !name.startsWith(FORWARDED_PREFIX)) continue;
    if (hopByHop?.has(name)) continue;
    // A header sent twice passes once, its values joined (as Headers joins them).
    const had = into[name];
    into[name] = had === undefined ? value : `${had}, ${value}`;
  }
}

/** The query parameters a route documents, by the route's path suffix below `responses/{id}`. */
export const FORWARDED_QUERY: Readonly<Record<string, ReadonlySet<string>>> = {
  // GET /responses/{id}
  "": new Set(["include", "include[]", "include_obfuscation", "starting_after", "stream"]),
  // GET /responses/{id}/input_items
  "/input_items": new Set(["after", "before", "include", "include[]", "limit", "order"]),
  // POST /responses/{id}/cancel takes none.
  "/cancel": new Set(),
};

/**
 * The client's query string reduced to the parameters `allowed` names, in their order (`api-version` is never one:
 * the endpoint's own is set by the provider's URL). Returns "" when nothing is left.
 */
export function forwardedQuery(search: string, allowed: ReadonlySet<string> | undefined): string {
  if (search === "" || search === "?" || !allowed || allowed.size === 0) return "";
  const kept = new URLSearchParams();
  for (const [name, value] of new URLSearchParams(search)) {
    if (allowed.has(name) && name !== "api-version") kept.append(name, value);
  }
  return kept.toString();
}
