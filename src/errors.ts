/**
 * One error family for the whole proxy, rendered in one place in the OpenAI error envelope that every OpenAI SDK
 * parses: `{"error": {"message", "type", "param", "code"}}`.
 */

export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "insufficient_quota"
  | "service_unavailable"
  | "timeout"
  | "server_error";

export interface ProxyErrorOptions {
  readonly param?: string | null;
  /** Extra response headers, e.g. `Retry-After`. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
  /** An upstream's own error handed on: its `type` and `code` as it named them, shown in place of the proxy's. */
  readonly shown?: { readonly type: string; readonly code: string | null };
}

export class ProxyError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly code: string;
  readonly param: string | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly shown?: { readonly type: string; readonly code: string | null };

  constructor(
    status: number,
    type: ErrorType,
    code: string,
    message: string,
    options: ProxyErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "ProxyError";
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
    if (options.shown) this.shown = options.shown;
  }
}

/** The client closed the request before its answer (499; never logged as the proxy's failure). */
export class ClientGone extends ProxyError {
  constructor() {
    super(499, "invalid_request_error", "client_closed_request", "The client closed the request");
  }
}

/**
 * What reading a client's body failed with, as the client's answer: the engine's parse error (`invalid HTTP/1
 * request`: malformed chunk sizes, a chunk extension past its limit) is a 400 to a client still there; anything
 * else is the client gone (499).
 */
export function bodyReadFailed(error: unknown): ProxyError {
  if (!(error instanceof Error) || !/^invalid HTTP/i.test(error.message)) return new ClientGone();
  return new ProxyError(
    400,
    "invalid_request_error",
    "invalid_request",
    "The request body is malformed: its chunked transfer coding could not be read",
  );
}

/** The most characters of a client-supplied value (an id, a model name, a path) an error message repeats. */
export const ECHO_CHARS = 100;

/**
 * A client-supplied value as an error message repeats it: whole up to `ECHO_CHARS` characters, else its start, an
 * ellipsis and its length, so that a 200 KB id does not come back in the answer (nor in the access log).
 */
export const echoed = (value: string): string =>
  value.length <= ECHO_CHARS ? value : `${value.slice(0, ECHO_CHARS)}... (${value.length} characters)`;

export const invalidJson = (message: string) =>
  new ProxyError(400, "invalid_request_error", "invalid_json", message);

export const invalidRequest = (message: string, param: string | null = null) =>
  new ProxyError(400, "invalid_request_error", "invalid_request", message, { param });

export const tooLarge = (limit: number) =>
  new ProxyError(
    413,
    "invalid_request_error",
    "request_too_large",
    `Request body is larger than the limit of ${limit} bytes`,
  );

/** An unknown route; `served` (the `/v1` routes) is named in the message so the caller sees what exists. */
export const notFoundRoute = (method: string, path: string, served: readonly string[] = []) =>
  new ProxyError(
    404,
    "invalid_request_error",
    "not_found",
    `No route for ${method} ${echoed(path)}` +
      (served.length > 0 ? `; served: ${served.join(", ")} (each /v1 route also without /v1)` : ""),
  );

export const invalidApiKey = () =>
  new ProxyError(401, "authentication_error", "invalid_api_key", "Missing or invalid API key", {
    headers: { "www-authenticate": "Bearer" },
  });

/** A route for operators (`/stats`, `/metrics`, `DELETE /cache`) called without an admin key. */
export const adminKeyRequired = (route: string) =>
  new ProxyError(
    401,
    "authentication_error",
    "invalid_api_key",
    `${route} needs an admin key (general_settings.admin_keys) in 'Authorization: Bearer' or 'api-key'`,
    { headers: { "www-authenticate": "Bearer" } },
  );

export const headersTooLarge = (size: number, limit: number) =>
  new ProxyError(
    431,
    "invalid_request_error",
    "request_header_fields_too_large",
    `Request headers take ${size} bytes; the limit is ${limit}`,
  );

/** The envelope for any error; unknown errors become a generic 500 that reveals nothing internal. */
export function errorEnvelope(error: ProxyError): { error: Record<string, unknown> } {
  const { message, param, shown } = error;
  return {
    error: { message, type: shown?.type ?? error.type, param, code: shown ? shown.code : error.code },
  };
}

export function toProxyError(error: unknown): ProxyError {
  if (error instanceof ProxyError) return error;
  return new ProxyError(500, "server_error", "internal_error", "The proxy failed to handle this request", {
    cause: error,
  });
}

/** Renders any error as an OpenAI-shaped JSON response. */
export function errorResponse(error: unknown, extraHeaders?: HeadersInit): Response {
  const proxyError = toProxyError(error);
  const headers = new Headers(extraHeaders);
  headers.set("content-type", "application/json");
  for (const [name, value] of Object.entries(proxyError.headers)) headers.set(name, value);
  return new Response(JSON.stringify(errorEnvelope(proxyError)), { status: proxyError.status, headers });
}
