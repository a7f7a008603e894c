/**
 * Files a generation request names must be the caller's own, as on the files routes: a client key that names
 * another key's file (a Chat Completions `file` part, a Responses `input_file` or `input_image` with `file_id`) gets
 * the same 404 `file_not_found` as for `GET /v1/files/{id}`, before anything goes upstream. Admin keys, and callers
 * when no key is needed, may name any file. Requests that name no file cost one walk over their message parts.
 */

import type { IncomingRequest } from "../core/request.ts";
import { echoed, ProxyError } from "../errors.ts";
import type { AdmissionRule, AdmissionVerdict } from "../proxy/admission.ts";
import { isStoreUnavailable } from "../store/patient_read.ts";
import type { ObjectAffinity } from "../surface/affinity.ts";
import { mayUse, type ObjectCaller, objectCaller, ownOnly } from "../surface/ownership.ts";
import type { KeyRegistry } from "./registry.ts";

export interface FileRefOptions {
  readonly registry: KeyRegistry;
  readonly objects: ObjectAffinity;
}

/** One file a request names, and where (for the error's `param`). */
export interface FileRef {
  readonly id: string;
  readonly param: string;
}

const ADMIT: AdmissionVerdict = { admit: true };

export function fileRefAdmission(options: FileRefOptions): AdmissionRule {
  const { registry, objects } = options;
  return (request: IncomingRequest): AdmissionVerdict | Promise<AdmissionVerdict> => {
    if (request.kind !== "generation" || request.route === "embeddings") return ADMIT;
    const policy = registry.identify(request.clientHeaders);
    const caller = objectCaller(registry, policy);
    if (!ownOnly(caller)) return ADMIT;
    const refs = fileRefs(request.body);
    return refs.length === 0 ? ADMIT : checked(objects, refs, caller);
  };
}

async function checked(
  objects: ObjectAffinity,
  refs: FileRef[],
  caller: ObjectCaller,
): Promise<AdmissionVerdict> {
  let holders;
  try {
    holders = await Promise.all(refs.map((ref) => objects.holderOf(ref.id)));
  } catch (error) {
    if (isStoreUnavailable(error)) return { admit: false, error };
    throw error;
  }
  const foreign = refs.find((_, i) => holders[i] === null || !mayUse(holders[i]!, caller));
  if (!foreign) return ADMIT;
  const error = new ProxyError(
    404,
    "invalid_request_error",
    "file_not_found",
    `No file '${echoed(foreign.id)}' is known to this proxy for this key`,
    { param: foreign.param },
  );
  return { admit: false, error };
}

/** The files a Chat Completions (`messages`) or Responses (`input`) body names in its content parts. */
export function fileRefs(body: Readonly<Record<string, unknown>>): FileRef[] {
  const refs: FileRef[] = [];
  const field = Array.isArray(body.messages) ? "messages" : Array.isArray(body.input) ? "input" : undefined;
  if (!field) return refs;
  (body[field] as unknown[]).forEach((item, i) => {
    if (!isRecord(item)) return;
    // A Responses input item may itself be a file part.
    partRef(item, `${field}[${i}]`, refs);
    if (!Array.isArray(item.content)) return;
    item.content.forEach((part, j) => {
      if (isRecord(part)) partRef(part, `${field}[${i}].content[${j}]`, refs);
    });
  });
  return refs;
}

function partRef(part: Record<string, unknown>, at: string, refs: FileRef[]): void {
  if (typeof part.file_id === "string") refs.push({ id: part.file_id, param: `${at}.file_id` });
  else if (isRecord(part.file) && typeof part.file.file_id === "string") {
    refs.push({ id: part.file.file_id, param: `${at}.file.file_id` });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
