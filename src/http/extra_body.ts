/**
 * `extra_body`, the Python LLMProxy's convention for callers without an SDK: the Python `openai` client's
 * `extra_body=` option merges its fields into the top level of the JSON body it sends, over any field of the same
 * name. A raw-HTTP caller writing `"extra_body": {...}` into the body gets the same: the fields are merged here, at
 * the edge, so `cache` controls apply and nothing named `extra_body` ever reaches an upstream (which would answer
 * an unknown parameter with 400). Pure.
 */

import { invalidRequest } from "../errors.ts";

const typeName = (value: unknown) => value === null ? "null" : Array.isArray(value) ? "array" : typeof value;

/** The body with `extra_body`'s fields merged over its own, shallowly; the same object when there is none. */
export function mergeExtraBody(body: Record<string, unknown>): Record<string, unknown> {
  if (!Object.hasOwn(body, "extra_body")) return body;
  const { extra_body: extra, ...rest } = body;
  if (extra === null) return rest; // the SDK's `extra_body=None`: nothing to add
  if (typeof extra !== "object" || Array.isArray(extra)) {
    throw invalidRequest(`'extra_body' must be an object, got ${typeName(extra)}`, "extra_body");
  }
  if (Object.hasOwn(extra, "extra_body")) {
    throw invalidRequest("'extra_body' must not contain another 'extra_body'", "extra_body.extra_body");
  }
  return { ...rest, ...extra };
}
