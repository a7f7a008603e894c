/**
 * Reading an upstream's answer into the pipeline's terms: which headers travel on, which statuses move a request to
 * another endpoint, and how a caller error goes back. Pure functions, used by the attempts stage.
 */

import type { Answer, AnswerMeta } from "../core/answer.ts";

/**
 * Response headers never copied from the upstream to the client. `content-encoding` is: the upstream clients drop it
 * from an answer they decoded, so one that is left labels the bytes the client gets.
 */
const DROPPED_RESPONSE_HEADERS = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "proxy-authenticate",
  "trailer",
  "upgrade",
  "set-cookie",
  "x-request-id",
  "date",
  "server",
]);

/** Whether an upstream status of a generation request moves it to another endpoint. */
export function isFailoverStatus(status: number): boolean {
  if (status >= 500 || status === 408 || status === 429) return true;
  if (status === 401 || status === 403 || status === 404) return true;
  if (status >= 300 && status < 400) return true;
  return false;
}

/**
 * Whether an upstream status of a `/responses/{id}` call counts as the endpoint failing. Only the owner holds the
 * response, so there is no other endpoint to move to; a 404 is a real "not found" and passes through.
 */
export function isItemFailureStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/**
 * The upstream's headers that travel on to the client (hop-by-hop and the like removed), as a plain record: the
 * client's Response validates it once, where a Headers object is validated on every set and again. A name that
 * comes more than once has its values joined with ", ", as `Headers` lists them.
 */
export function forwardedHeaders(upstream: readonly (readonly [string, string])[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < upstream.length; i++) {
    const name = upstream[i][0];
    if (DROPPED_RESPONSE_HEADERS.has(name)) continue;
    const value = upstream[i][1];
    const before = headers[name];
    headers[name] = before === undefined ? value : `${before}, ${value}`;
  }
  return headers;
}

const decoder = new TextDecoder();

/** A caller error passes through as the upstream wrote it when that is an OpenAI envelope; else it is wrapped. */
export function callerError(
  status: number,
  bytes: Uint8Array<ArrayBuffer>,
  headers: Record<string, string>,
  meta: AnswerMeta,
): Answer {
  headers["content-type"] = "application/json";
  const text = decoder.decode(bytes);
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object" && "error" in parsed) {
      return { status, headers, body: { kind: "bytes", bytes }, meta };
    }
  } catch {
    // not JSON: wrapped below
  }
  const envelope = {
    error: {
      message: `Upstream answered HTTP ${status}: ${text.slice(0, 500)}`,
      type: "invalid_request_error",
      param: null,
      code: `upstream_${status}`,
    },
  };
  return { status, headers, body: { kind: "bytes", bytes: JSON.stringify(envelope) }, meta };
}
