/**
 * Who is calling: finds the request's key in the key registry (named `keys:`, runtime keys, `api_keys`,
 * `admin_keys`) and sets it on the context as `key` for the routes. A key comes in `Authorization: Bearer KEY`
 * (OpenAI SDKs) or `api-key: KEY` (Azure SDKs).
 *
 * - Model routes need a client key whenever client keys exist; an admin key also works as a client key.
 * - `/stats`, `/metrics` and `/ui/data` need an admin key when `admin_keys` is set, else a client key when
 *   those exist. The `/ui` page itself (not its data) is open.
 * - `DELETE /cache` needs an admin key whenever any key is configured (refused when no admin key exists).
 * - `/admin/*` (keys and usage) always needs an admin key.
 * - `/health` is open. An expired key gets 401. Keys are never logged or echoed.
 */

import { headersOf, type Middleware } from "../request_context.ts";
import type { HeaderReader } from "../../core/header_reader.ts";
import { adminKeyRequired, invalidApiKey, ProxyError } from "../../errors.ts";
import type { KeyPolicy } from "../../keys/policy.ts";
import { presentedKeys } from "../../keys/key_text.ts";
import type { KeyRegistry } from "../../keys/registry.ts";

export interface AuthOptions {
  readonly registry: KeyRegistry;
  /** Epoch milliseconds, for key expiry. */
  readonly now: () => number;
}

/** Paths anyone may call (load balancer probes; the dashboard page, whose figures need an admin key). */
const OPEN_PATHS = new Set(["/health", "/v1/health", "/ui"]);
const isOpen = (path: string) => OPEN_PATHS.has(path) || path.startsWith("/ui/assets/");

const withoutV1 = (path: string) => path.startsWith("/v1/") ? path.slice(3) : path;

/** Whether the request is for an operator route. */
export function isAdminRoute(method: string, path: string): boolean {
  const rest = withoutV1(path);
  if (rest === "/stats" || rest === "/metrics" || path === "/ui/data") return true;
  return rest === "/cache" && method === "DELETE";
}

/** The key-management and usage routes: an admin key, always. */
export const isKeyAdminRoute = (path: string) => withoutV1(path).startsWith("/admin/");

export { presentedKeys };

/** The first presented key the registry knows; undefined when none is known. */
export function identify(registry: KeyRegistry, headers: HeaderReader): KeyPolicy | undefined {
  return registry.identify(headers);
}

const keyExpired = (policy: KeyPolicy) =>
  new ProxyError(
    401,
    "authentication_error",
    "invalid_api_key",
    `This API key expired on ${policy.expires}`,
    {
      headers: { "www-authenticate": "Bearer" },
    },
  );

type AuthEnv = { Variables: { key: KeyPolicy | undefined } };

export function auth<E extends AuthEnv = AuthEnv>(options: AuthOptions): Middleware<E> {
  const { registry, now } = options;
  // Not async: nothing happens after `next()`, so no frame of its own waits for the request.
  return (c, next) => {
    const path = c.req.path;
    if (isOpen(path)) return next();
    const policy = identify(registry, headersOf(c));
    const admin = policy !== undefined && registry.isAdmin(policy);
    const method = c.req.method;
    if (isKeyAdminRoute(path)) {
      if (!admin) throw adminKeyRequired(`${method} ${path}`);
    } else if (isAdminRoute(method, path) && needsAdmin(registry, method)) {
      if (!admin) throw adminKeyRequired(`${method} ${path}`);
    } else if (registry.clientKeysRequired && policy === undefined) {
      throw invalidApiKey();
    }
    if (policy?.expiresAt !== undefined && policy.expiresAt <= now()) throw keyExpired(policy);
    c.set("key", policy);
    return next();
  };
}

/** `/stats` and `/metrics` need an admin key when admin keys exist; `DELETE /cache` when any key exists. */
function needsAdmin(registry: KeyRegistry, method: string): boolean {
  return registry.hasAdminKeys || (method === "DELETE" && registry.clientKeysRequired);
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|\[::1\]|localhost)$/i;

/** The warning to log when the proxy listens beyond this machine with no client keys; undefined when it does not. */
export function openRelayWarning(hostname: string, clientKeys: boolean): string | undefined {
  if (LOOPBACK.test(hostname) || clientKeys) return undefined;
  return `SECURITY WARNING: listening on ${hostname} with no client keys (keys or general_settings.api_keys): anyone who can reach this ` +
    "address can use your upstream API keys and spend their quota. Set keys or api_keys (and admin_keys), or bind to " +
    "127.0.0.1 behind an authenticating reverse proxy.";
}
