/**
 * Whether a stream's first events begin with the upstream's own error: `data: {"error": ...}` (Chat Completions) or
 * an `error` event (Responses), or whether an answer (a stream's, or a whole JSON one) is an error envelope. Such a
 * stream has sent the client nothing yet, so it fails over like one that died before its first byte, and such an
 * answer like one that is not JSON; unless the error is the caller's (a request another endpoint would refuse too).
 */

import type { Route } from "../core/route.ts";

const decoder = new TextDecoder();
/** `data:`, then an optional space, opening every data-first event. */
const DATA = [100, 97, 116, 97, 58];
/** The start of an `error` event of the Responses API. */
const ERROR_EVENT = /^event: ?error\r?\n/;
const CHAT_ERROR = /^data: ?\{\s*"error"\s*:/;
/**
 * What makes an error the caller's: its type or code (OpenAI's, the Responses API's image and policy codes,
 * Azure's PascalCase ones), a `param` it names, or an Azure `status` that is the caller's (400, 413, 415,
 * 422).
 */
const CALLERS =
  /^(invalid|context_length|content_filter|content_policy|string_above|image_|unsupported|empty_|failed_to_download|bio_policy|misalignment)/i;
const CALLERS_STATUS = new Set([400, 413, 415, 422]);

/**
 * The upstream's error that opens `first` (the stream's first whole events), when it is not the caller's; else
 * undefined. Costs a few byte comparisons for a stream that does not start with an error.
 */
export function upstreamErrorFirst(first: Uint8Array, route: Route): string | undefined {
  // No stream at all but a JSON body (a gateway's answer to a stream request, with a 200): an error envelope fails.
  if (first[0] === 123) return envelopeText(first);
  if (route === "responses") {
    // `event: ` and the first letter of its name: `e` for `error`, `r` for the `response.*` events.
    if (first[0] !== 101 || first[7] !== 101) return undefined;
  } else {
    if (!DATA.every((byte, i) => first[i] === byte)) return undefined;
    const brace = first[5] === 32 ? 6 : 5;
    if (first[brace] !== 123 || first[brace + 1] === 34 && first[brace + 2] !== 101) return undefined; // {"e
  }
  const text = decoder.decode(first.subarray(0, eventEnd(first)));
  if (!(route === "responses" ? ERROR_EVENT : CHAT_ERROR).test(text)) return undefined;
  const data = text.split(/\r?\n/).filter((line) => line.startsWith("data:")).map((line) =>
    line.slice(5).trim()
  );
  let error: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(data.join("\n"));
    // A Responses error event names its error at the top, or (newer) in an `error` object of its own.
    error = route === "responses" ? parsed.error ?? parsed : parsed.error;
  } catch {
    // an error that does not parse: the upstream's
  }
  const named = errorName(error);
  return named === undefined ? undefined : `stream began with an error event (${named})`;
}

/**
 * The name of the upstream's error when a parsed JSON answer is an OpenAI error envelope (an `error` object, no
 * `object` of its own: a failed Responses object carries an `error` too, and is an answer) that is not the
 * caller's; else undefined.
 */
export function envelopeError(parsed: unknown): string | undefined {
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const { error, object } = parsed as Record<string, unknown>;
  if (typeof error !== "object" || error === null || object !== undefined) return undefined;
  return errorName(error as Record<string, unknown>);
}

/** `envelopeError` of a whole JSON body's bytes (undefined when they do not parse). */
function envelopeText(bytes: Uint8Array): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(bytes));
  } catch {
    return undefined;
  }
  const named = envelopeError(parsed);
  return named === undefined ? undefined : `a 200 with an error envelope (${named})`;
}

/**
 * What names an upstream's error object (its code, else its type), or undefined when the error is the caller's: a
 * request another endpoint would refuse as well.
 */
export function errorName(error: Record<string, unknown> | undefined): string | undefined {
  const type = typeof error?.type === "string" && error.type !== "error" ? error.type : "";
  const code = typeof error?.code === "string" ? error.code : "";
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
