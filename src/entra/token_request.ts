/**
 * The three ways to get an Entra ID access token for Azure OpenAI, as HTTP requests:
 * - client credentials: `POST {authority_host}/{tenant}/oauth2/v2.0/token` with the client secret (form body);
 * - workload identity (AKS): the same request with the federated token file's JWT as a client assertion;
 * - managed identity: `GET {imds_endpoint}?api-version=2018-02-01&resource=...` with `Metadata: true`.
 * Errors carry a short message safe for logs: the status and the identity platform's error code, never a secret.
 */

import type { AzureAdConfig } from "../config/config.ts";
import type { AccessToken } from "./cached_token.ts";
import { joinBytes } from "../util/bytes.ts";

export class TokenError extends Error {
  /** How long the identity platform asked to be left alone (`Retry-After` of a 429 or 503), in ms. */
  readonly retryAfterMs?: number;

  constructor(message: string, retryAfterMs?: number) {
    super(message);
    this.name = "TokenError";
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

/** Most of a token endpoint's answer read: a real one is ~2 KB; past this it is refused, not buffered. */
export const MAX_ANSWER_BYTES = 64 * 1024;
/** Longest lifetime believed (Entra ID tokens live 1 to 24 hours): a longer one is cut to this. */
export const MAX_LIFETIME_MS = 24 * 3600_000;
/**
 * Shortest lifetime believed: a token said to live less is used this long, so a token endpoint that hands out
 * second-long tokens is asked about twice a minute per credential, not once per request. Should it really expire
 * sooner, the endpoint's 401 fails the attempt over (a token that young is not dropped on a 401 either).
 */
export const MIN_LIFETIME_MS = 30_000;

export interface TokenRequestDeps {
  readonly fetch: typeof fetch;
  readonly now: () => number;
  /** Reads the federated token file (workload identity); the kubelet rotates it, so it is read per request. */
  readonly readTextFile: (path: string) => Promise<string>;
  /** Bound on one token request. */
  readonly timeoutMs: number;
}

const IMDS_API_VERSION = "2018-02-01";
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

export async function requestToken(ad: AzureAdConfig, deps: TokenRequestDeps): Promise<AccessToken> {
  const request = await buildRequest(ad, deps);
  const sentAt = deps.now();
  let response: Response;
  try {
    response = await deps.fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal: AbortSignal.timeout(deps.timeoutMs),
    });
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === "TimeoutError";
    throw new TokenError(timedOut ? `no answer within ${deps.timeoutMs} ms` : "token endpoint unreachable");
  }
  const text = await readCapped(response);
  if (text === undefined) {
    throw new TokenError(`HTTP ${response.status} with an answer over ${MAX_ANSWER_BYTES} bytes`);
  }
  let body: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object") body = parsed;
  } catch {
    // not JSON: described below
  }
  if (!response.ok) {
    // Only a 429 or 503 asks to be left alone (RFC 9110, RFC 6585); another status's Retry-After is not heeded.
    const busy = response.status === 429 || response.status === 503;
    throw new TokenError(
      `HTTP ${response.status}${platformError(body)}`,
      busy ? retryAfterMs(response) : undefined,
    );
  }
  const value = body.access_token;
  const lifetimeMs = lifetime(body, sentAt);
  if (typeof value !== "string" || value === "" || lifetimeMs === undefined) {
    throw new TokenError(`HTTP ${response.status} without an access_token and its lifetime`);
  }
  return { value, obtainedAt: sentAt, expiresAt: sentAt + lifetimeMs };
}

interface HttpRequest {
  readonly method: "GET" | "POST";
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

async function buildRequest(ad: AzureAdConfig, deps: TokenRequestDeps): Promise<HttpRequest> {
  if (ad.kind === "managed_identity") {
    const query = new URLSearchParams({ "api-version": IMDS_API_VERSION, resource: resourceOf(ad.scope) });
    if (ad.clientId) query.set("client_id", ad.clientId);
    return {
      method: "GET",
      url: `${ad.imdsEndpoint}?${query}`,
      headers: { metadata: "true" },
    };
  }
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: ad.clientId,
    scope: ad.scope,
  });
  if (ad.kind === "client_credentials") form.set("client_secret", ad.clientSecret);
  else {
    let assertion: string;
    try {
      assertion = (await deps.readTextFile(ad.tokenFile)).trim();
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound ? "not found" : "unreadable";
      throw new TokenError(`federated token file ${why}`);
    }
    form.set("client_assertion_type", JWT_BEARER);
    form.set("client_assertion", assertion);
  }
  return {
    method: "POST",
    url: `${ad.authorityHost}/${encodeURIComponent(ad.tenantId)}/oauth2/v2.0/token`,
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: form.toString(),
  };
}

/** The instance metadata endpoint takes a resource, not a scope: `https://x/.default` -> `https://x`. */
function resourceOf(scope: string): string {
  return scope.replace(/\/\.default$/, "");
}

/**
 * Milliseconds the token lives: `expires_in` (a number, or a string from IMDS), else `expires_on` (epoch s);
 * between `MIN_LIFETIME_MS` and `MAX_LIFETIME_MS`.
 */
function lifetime(body: Record<string, unknown>, now: number): number | undefined {
  const expiresIn = Number(body.expires_in);
  const expiresOn = Number(body.expires_on);
  const said = body.expires_in !== undefined && Number.isFinite(expiresIn) && expiresIn > 0
    ? expiresIn * 1000
    : body.expires_on !== undefined && Number.isFinite(expiresOn) && expiresOn * 1000 > now
    ? expiresOn * 1000 - now
    : undefined;
  return said === undefined ? undefined : Math.min(Math.max(said, MIN_LIFETIME_MS), MAX_LIFETIME_MS);
}

/** The answer's text, or undefined past `MAX_ANSWER_BYTES` (the rest is not read); "" when it breaks off. */
async function readCapped(response: Response): Promise<string | undefined> {
  if (!response.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_ANSWER_BYTES) {
        reader.cancel().catch(() => {});
        return undefined;
      }
      chunks.push(value);
    }
  } catch {
    return "";
  }
  return new TextDecoder().decode(joinBytes(chunks, size));
}

/** `Retry-After` in whole seconds (the identity platform's form), as ms; undefined when absent or not that. */
function retryAfterMs(response: Response): number | undefined {
  const value = response.headers.get("retry-after")?.trim();
  return value && /^\d{1,6}$/.test(value) ? Number(value) * 1000 : undefined;
}

/** ` invalid_client (AADSTS7000215)`: the error code and the AADSTS number, no free text. */
function platformError(body: Record<string, unknown>): string {
  const code = typeof body.error === "string" && /^[\w.-]{1,64}$/.test(body.error) ? ` ${body.error}` : "";
  const description = typeof body.error_description === "string" ? body.error_description : "";
  const aadsts = /AADSTS\d+/.exec(description)?.[0];
  return `${code}${aadsts ? ` (${aadsts})` : ""}`;
}
