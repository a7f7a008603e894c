/**
 * Whether a stream's first events begin with the upstream's own error: `data: {"error": ...}` (Chat Completions) or
 * an `error` event (Responses), or whether an answer (a stream's, or a whole JSON one) is an error envelope. Such a
 * stream has sent the client nothing yet, so it fails over like one that died before its first byte, and such an
 * answer like one that is not JSON; unless the error is the caller's (a request another endpoint would refuse too).
 */

import type { Route } from "../core/route.ts";
import { TextFields } from "../sse/text_fields.ts";

const decoder = new TextDecoder();
/** `data:`, then an optional space, opening every data-first event. */
const DATA = [100, 97, 116, 97, 58];
/** A Chat Completions event's data that is an error envelope. */
const CHAT_ERROR = /^\{\s*"error"\s*:/;
/** A data-only Responses event's data that is an `error` event. */
const RESPONSES_ERROR = /^\{\s*"type"\s*:\s*"error"/;
/** The fields of a first event that may be an error (read synchronously, so one reader serves every stream). */
const fields = new TextFields();
/**
 * Codes saying the model or deployment asked for is not on this endpoint: the endpoint's problem, as the same
 * error with a 404 is (another endpoint of the group may have it), though OpenAI types it `invalid_request_error`.
 */
const MISSING = /^(model_not_found|deployment_?not_?found)$/i;
/**
 * What makes an error the caller's: its type or code (OpenAI's, the Responses API's image and policy codes,
 * Azure's PascalCase ones), a `param` it names, or an Azure `status` that is the caller's (400, 413, 415,
 * 422).
 */
const CALLERS =
  /^(invalid|context_length|content_filter|content_policy|string_above|image_|unsupported|empty_|failed_to_download|bio_policy|misalignment)/i;
const CALLERS_STATUS = new Set([400, 413, 415, 422]);

/** The upstream's own error in an answer that came as a success, when it is not the caller's. */
export interface UpstreamFault {
  /** What happened, in a few words naming the error (for logs and the endpoint's health). */
  readonly cause: string;
  /** The upstream's error object as it sent it (empty when it did not parse). */
  readonly error: Readonly<Record<string, unknown>>;
}

/**
 * The upstream's error that opens `first` (the stream's first whole events), when it is not the caller's; else
 * undefined. Costs a few byte comparisons for a stream that does not start with an error.
 */
export function upstreamErrorFirst(first: Uint8Array, route: Route): UpstreamFault | undefined {
  // No stream at all but a JSON body (a gateway's answer to a stream request, with a 200): an error envelope fails.
  if (first[0] === 123) return envelopeText(first);
  if (route === "responses") {
    // `event:`, its optional space and the first letter of its name: `e` for `error`, `r` for `response.*`; or a
    // data-only event, which its `type` names (the SSE readers of the proxy and the SDKs take those too).
    if (first[0] === 100) {
      if (!DATA.every((byte, i) => first[i] === byte) || first[first[5] === 32 ? 6 : 5] !== 123) {
        return undefined;
      }
    } else if (first[0] !== 101 || first[first[6] === 32 ? 7 : 6] !== 101) return undefined;
  } else {
    if (!DATA.every((byte, i) => first[i] === byte)) return undefined;
    const brace = first[5] === 32 ? 6 : 5;
    if (first[brace] !== 123 || first[brace + 1] === 34 && first[brace + 2] !== 101) return undefined; // {"e
  }
  // The event's fields as every reader of the proxy reads them (`event:error` and `event: error` alike).
  fields.read(decoder.decode(first.subarray(0, eventEnd(first))), false);
  const data = fields.data;
  const event = fields.event ?? (route === "responses" && RESPONSES_ERROR.test(data ?? "") ? "error" : null);
  if (data === null || (route === "responses" ? event !== "error" : !CHAT_ERROR.test(data))) {
    return undefined;
  }
  let error: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(data);
    // A Responses error event names its error at the top, or (newer) in an `error` object of its own.
    const named = route === "responses" ? parsed.error ?? parsed : parsed.error;
    if (typeof named === "object" && named !== null) error = named;
  } catch {
    // an error that does not parse: the upstream's
  }
  const named = errorName(error);
  return named === undefined ? undefined : { cause: `stream began with an error event (${named})`, error };
}

/**
 * The upstream's error when a parsed JSON answer is an OpenAI error envelope (an `error` object, no `object` of
 * its own: a failed Responses object carries an `error` too, and is an answer) that is not the caller's; else
 * undefined.
 */
export function envelopeError(parsed: unknown): UpstreamFault | undefined {
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const { error, object } = parsed as Record<string, unknown>;
  if (typeof error !== "object" || error === null || object !== undefined) return undefined;
  const named = errorName(error as Record<string, unknown>);
  return named === undefined
    ? undefined
    : { cause: `an error envelope (${named})`, error: error as Record<string, unknown> };
}

/** `envelopeError` of a whole JSON body's bytes (undefined when they do not parse). */
function envelopeText(bytes: Uint8Array): UpstreamFault | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(bytes));
  } catch {
    return undefined;
  }
  const fault = envelopeError(parsed);
  return fault && { cause: `a 200 with ${fault.cause}`, error: fault.error };
}

/**
 * What names an upstream's error object (its code, else its type), or undefined when the error is the caller's: a
 * request another endpoint would refuse as well.
 */
export function errorName(error: Record<string, unknown> | undefined): string | undefined {
  const type = typeof error?.type === "string" && error.type !== "error" ? error.type : "";
  const code = typeof error?.code === "string" ? error.code : "";
  if (MISSING.test(code)) return code.slice(0, 60);
  if (CALLERS.test(type) || CALLERS.test(code)) return undefined;
  if (typeof error?.param === "string" && error.param !== "") return undefined;
  if (CALLERS_STATUS.has(Number(error?.status))) return undefined;
  return (code || type || "unknown").slice(0, 60);
}

/** Where the first event of `bytes` ends (after its blank line), or their length. */
function eventEnd(bytes: Uint8Array): number {
  for (let at = 1; at < bytes.length; at++) {
    if (bytes[at] === 10 && (bytes[at - 1] === 10 || (bytes[at - 1] === 13 && bytes[at - 2] === 10))) {
      return at + 1;
    }
  }
  return bytes.length;
}
