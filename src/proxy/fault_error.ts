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

/** The error for the client of `fault`, the last of the upstream's errors (from `endpoint`). */
export function faultError(fault: UpstreamFault, endpoint: EndpointConfig): ProxyError {
  const { error } = fault;
  // A Responses error event's own `type` is `error` (the event's), no error type.
  const named = text(error.type);
  const type = named === undefined || named === "error" ? "server_error" : named;
  const code = text(error.code) ?? null;
  const param = text(error.param) ?? null;
  const message = text(error.message) ?? `The upstream answered with an error (${code ?? type})`;
  return new ProxyError(
    faultStatus(error, `${code ?? ""} ${type}`),
    "server_error",
    code ?? type,
    masked(
      message.slice(0, MAX_MESSAGE),
      endpoint,
    ),
    { param, shown: { type, code } },
  );
}

/**
 * A status for the upstream's error: the one it names (Azure's `status`), else one its code or type points to
 * (a missing model 404, a limit 429, a timeout 504, an overload 503), else 502: the upstream failed.
 */
function faultStatus(error: Readonly<Record<string, unknown>>, names: string): number {
  const status = Number(error.status);
  if (Number.isInteger(status) && status >= 400 && status <= 599) return status;
  if (/model_not_found|deployment_?not_?found/i.test(names)) return 404;
  if (/rate_limit|too_many|quota|\brequests\b|\btokens\b/i.test(names)) return 429;
  if (/timeout|timed_out/i.test(names)) return 504;
  if (/overload|unavailable|capacity/i.test(names)) return 503;
  return 502;
}

/** `message` without the endpoint's credentials (as the answer guard masks them) or its URL. */
function masked(message: string, endpoint: EndpointConfig): string {
  const mask = SecretMask.of([endpoint.apiKey, ...Object.values(endpoint.headers)]);
  let shown = mask ? mask.text(message) : message;
  const url = endpoint.baseUrl.replace(/\/+$/, "");
  let host = "";
  try {
    host = new URL(url).host;
  } catch { /* a base URL that does not parse: its text is masked alone */ }
  for (const part of [url, host]) if (part) shown = shown.replaceAll(part, "[endpoint]");
  return shown;
}

const text = (value: unknown) => typeof value === "string" && value !== "" ? value : undefined;
