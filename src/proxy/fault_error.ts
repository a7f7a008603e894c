/**
 * The client's error when every endpoint tried answered with an error of its own inside a 200 (a stream's first
 * event, an error envelope): the upstream's error as it sent it (message, type, code, param), with a status that
 * fits it, instead of the proxy's 503 that only names its code. The endpoint's key, headers and URL are masked out
 * of the message.
 */

import type { EndpointConfig } from "../config/config.ts";
import { ProxyError } from "../errors.ts";
import { SecretMask } from "../upstream/secret_mask.ts";
import type { UpstreamFault } from "./first_error.ts";

/** Most characters of the upstream's message handed on. */
const MAX_MESSAGE = 2_000;
/** Most characters of the upstream's `type`, `code` or `param` handed on. */
const MAX_NAME = 100;

/** The error for the client of `fault`, the last of the upstream's errors (from `endpoint`). */
export function faultError(fault: UpstreamFault, endpoint: EndpointConfig): ProxyError {
  const { error } = fault;
  const mask = masker(endpoint);
  /** A `type`, `code` or `param` as handed on: masked and at most `MAX_NAME` characters. */
  const short = (value: unknown) => {
    const name = text(value);
    return name === undefined ? undefined : mask(name).slice(0, MAX_NAME);
  };
  // A Responses error event's own `type` is `error` (the event's), no error type.
  const named = short(error.type);
  const type = named === undefined || named === "error" ? "server_error" : named;
  const code = short(error.code) ?? null;
  const param = short(error.param) ?? null;
  const message = text(error.message) ?? `The upstream answered with an error (${code ?? type})`;
  return new ProxyError(
    faultStatus(error, `${code ?? ""} ${type}`),
    "server_error",
    code ?? type,
    mask(message.slice(0, MAX_MESSAGE)),
    { param, shown: { type, code } },
  );
}

/** Statuses an upstream names that the client may see as they are; any other (401, 403: the endpoint's own key) is 502. */
const HANDED_ON = new Set([404, 408, 429, 500, 502, 503, 504]);

/**
 * A status for the upstream's error: the one it names (Azure's `status`) when it says the same to the client,
 * else one its code or type points to (a missing model 404, a limit 429, a timeout 504, an overload 503), else
 * 502: the upstream failed. A 401 or 403 named by the upstream is about the endpoint's credentials, not the
 * client's: a 502.
 */
function faultStatus(error: Readonly<Record<string, unknown>>, names: string): number {
  const status = Number(error.status);
  if (HANDED_ON.has(status)) return status;
  if (Number.isInteger(status) && status >= 400 && status <= 599) return 502;
  if (/model_not_found|deployment_?not_?found/i.test(names)) return 404;
  if (/rate_limit|too_many|quota|\brequests\b|\btokens\b/i.test(names)) return 429;
  if (/timeout|timed_out/i.test(names)) return 504;
  if (/overload|unavailable|capacity/i.test(names)) return 503;
  return 502;
}

/** Text without the endpoint's credentials (as the answer guard masks them) or its URL. */
function masker(endpoint: EndpointConfig): (text: string) => string {
  const secrets = SecretMask.of([endpoint.apiKey, ...Object.values(endpoint.headers)]);
  const url = endpoint.baseUrl.replace(/\/+$/, "");
  let host = "";
  try {
    host = new URL(url).host;
  } catch { /* a base URL that does not parse: its text is masked alone */ }
  const parts = [url, host].filter((part) => part !== "");
  return (text) => {
    let shown = secrets ? secrets.text(text) : text;
    for (const part of parts) shown = shown.replaceAll(part, "[endpoint]");
    return shown;
  };
}

const text = (value: unknown) => typeof value === "string" && value !== "" ? value : undefined;
