/**
 * Azure OpenAI's content-filter refusals: a 400 whose error code is `content_filter` (the prompt tripped the
 * deployment's content policy; `innererror.code` is `ResponsibleAIPolicyViolation`). The client gets it as a policy
 * error in the OpenAI envelope, with the categories that tripped; a group with `content_filter_fallback: true`
 * tries another endpoint first (another deployment may run another policy). Pure.
 */

import type { Answer, AnswerMeta } from "../core/answer.ts";

export interface Refusal {
  readonly message: string;
  /** Azure's per-category verdicts (`hate`, `violence`, ... with `filtered` and `severity`), when it sent them. */
  readonly categories?: unknown;
}

const decoder = new TextDecoder();

/** The refusal in an upstream's error answer, or undefined when it is some other error. */
export function contentFilterRefusal(status: number, bytes: Uint8Array): Refusal | undefined {
  if (status !== 400 || bytes.length > 64 * 1024) return undefined;
  let error: Record<string, unknown>;
  try {
    error = JSON.parse(decoder.decode(bytes))?.error;
  } catch {
    return undefined;
  }
  if (!error || typeof error !== "object") return undefined;
  const inner = error.innererror as Record<string, unknown> | undefined;
  const refused = error.code === "content_filter" ||
    (inner !== null && typeof inner === "object" && inner.code === "ResponsibleAIPolicyViolation");
  if (!refused) return undefined;
  const message = typeof error.message === "string" && error.message !== ""
    ? error.message.slice(0, 1000)
    : "The request was refused by the upstream's content filter";
  const categories = inner && typeof inner === "object" ? inner.content_filter_result : undefined;
  return categories === undefined ? { message } : { message, categories };
}

/** The refusal as the client sees it: 400, `invalid_request_error` / `content_filter`, `param: "prompt"`. */
export function policyError(refusal: Refusal, headers: Record<string, string>, meta: AnswerMeta): Answer {
  const error: Record<string, unknown> = {
    message: refusal.message,
    type: "invalid_request_error",
    param: "prompt",
    code: "content_filter",
  };
  if (refusal.categories !== undefined) error.content_filter_result = refusal.categories;
  headers["content-type"] = "application/json";
  const bytes = new TextEncoder().encode(JSON.stringify({ error }));
  return { status: 400, headers, body: { kind: "bytes", bytes }, meta };
}
