/**
 * Files and batches. An upload streams to an endpoint of its group (the `x-llmproxy-model-group` header, or the
 * only group) and the new file's id is remembered with that endpoint and the key that made it; a batch goes to the
 * endpoint that holds its input file; every later call for a file or batch goes to the endpoint that holds it, for
 * its owner only (`surface/ownership.ts`); lists merge the group and show a client key only its own objects.
 */

import type { Context } from "hono";
import type { GroupConfig } from "../../config/config.ts";
import type { Answer } from "../../core/answer.ts";
import { invalidRequest } from "../../errors.ts";
import { boundaryOf } from "../../multipart/scanner.ts";
import { isFailoverStatus } from "../../proxy/upstream_answer.ts";
import type { Services } from "../../services.ts";
import { answerText, type CallContext, relayRequest, upstreamCall } from "../../surface/call.ts";
import { GROUP_HEADER, groupFor } from "../../surface/groups.ts";
import { callHolder, type Collection, enc, type ObjectDeps, ownerOf } from "../../surface/objects.ts";
import { fromStart, type ListCursor, savedCursors } from "../../surface/list_cursors.ts";
import { mergedList } from "../../surface/merged_list.ts";
import { type ObjectCaller, objectCaller, ownerFor } from "../../surface/ownership.ts";
import { openUpload } from "../../surface/upload.ts";
import { parseJsonBody, readBodyText, refuseCoding } from "../body.ts";
import { respond } from "../respond.ts";
import type { AppEnv } from "./generation.ts";

export function callContext(c: Context<AppEnv>): CallContext {
  return {
    clientHeaders: c.req.raw.headers,
    requestId: c.get("requestId"),
    signal: c.req.raw.signal,
    trace: c.get("trace"),
  };
}

/** The client's query string for the upstream, never its `api-version` (the endpoint's own is set for Azure). */
function clientQuery(c: Context<AppEnv>): string {
  const params = new URL(c.req.url).searchParams;
  params.delete("api-version");
  return params.toString();
}

/** The caller as ownership of files and batches sees it. */
const callerOf = (services: Services, c: Context<AppEnv>): ObjectCaller | null =>
  objectCaller(services.keys, c.get("key"));

/** The answer as the client's Response, with the proxy's headers. */
export const reply = (c: Context<AppEnv>, answer: Answer) =>
  respond(answer, c.get("requestId"), c.get("trace"));

/** `POST /v1/files`: the form streams upstream as it arrives. */
export function createFileHandler(services: Services) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const group = groupFor(services.config, c.req.header(GROUP_HEADER) ?? null, null, c.get("key"));
    c.set("group", group.name);
    const contentType = c.req.header("content-type") ?? null;
    if (!boundaryOf(contentType)) throw invalidRequest("A file upload must be a multipart/form-data body");
    refuseCoding(c.req.header("content-encoding"));
    const declared = c.req.header("content-length");
    const length = declared === undefined ? null : Number(declared);
    const { upload, holding } = await openUpload(c.req.raw.body, length, services.bodyPool);
    const context = callContext(c);
    const request = relayRequest(context, group, "files", { kind: "group" }, upload.unresendableUpload);
    const call = upstreamCall(context, group, {
      method: "POST",
      path: "files",
      // Chunks written out one by one through one buffer: the upload leaves no garbage per chunk behind.
      body: () => upload.chunks(),
      contentType: contentType!,
      failure: isFailoverStatus,
    });
    try {
      const { answer } = await services.pipeline.relay(request, call);
      return reply(c, await remembered(services, answer, ownerFor(callerOf(services, c))));
    } finally {
      services.bodyPool.give(holding);
    }
  };
}

/** `POST /v1/batches`: sent to the endpoint that holds `input_file_id` (a file the caller may use). */
export function createBatchHandler(services: Services) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const text = await readBodyText(
      c.req.raw,
      services.config.settings.maxBodyBytes,
      services.config.settings.limits.bodyTimeoutMs,
      undefined,
      c.get("bodyHold"),
    );
    const body = await parseJsonBody(text, services.config.settings.maxBodyItems);
    const fileId = body.input_file_id;
    if (typeof fileId !== "string" || fileId === "") {
      throw invalidRequest(
        "'input_file_id' must be the id of a file uploaded for the batch",
        "input_file_id",
      );
    }
    const context = callContext(c);
    const caller = callerOf(services, c);
    const holder = await ownerOf(services, "files", fileId, context, caller, "input_file_id");
    c.set("group", holder.group.name);
    // Creating a batch makes something upstream: charged to the key like an upload.
    const answer = await callHolder(services, holder, "files", fileId, context, {
      method: "POST",
      path: "batches",
      body: () => text,
    }, { creates: "batches" });
    return reply(c, await remembered(services, answer, ownerFor(caller)));
  };
}

/** The fields of an answer that name objects held where it was made: a batch's output and error files too. */
const HELD_FIELDS = ["id", "output_file_id", "error_file_id"];

/**
 * Reads an object's small JSON answer and remembers the ids it names (its own, a batch's output and error files)
 * with the endpoint that answered and `owner` (the key that made it, or the batch's owner; null: none).
 */
async function remembered(deps: ObjectDeps, answer: Answer, owner: string | null): Promise<Answer> {
  if (answer.status < 200 || answer.status >= 300) return answer;
  const text = await answerText(answer);
  let object: Record<string, unknown> = {};
  try {
    object = JSON.parse(text);
  } catch {
    // not JSON: passed on as it came
  }
  const ids = HELD_FIELDS.map((field) => object?.[field]).filter((id) => typeof id === "string" && id !== "");
  const holder = { endpoint: answer.meta.endpoint, owner };
  await Promise.all(ids.map((id) => deps.objects.remember(id as string, holder)));
  return { ...answer, body: { kind: "bytes", bytes: text } };
}

/**
 * `GET /v1/files|batches`: every resource of the group, merged into one page. With `after`, the list goes on where
 * the page that ended with it stood on each resource; an `after` it did not hand out pages its holder alone.
 */
export function listHandler(services: Services, collection: Collection) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const context = callContext(c);
    const query = clientQuery(c);
    const after = c.req.query("after");
    const caller = callerOf(services, c);
    let list: { group: GroupConfig; cursors: ListCursor[] } | null;
    if (after) {
      list = await savedCursors(services, caller, query, after);
      if (!list) {
        const holder = await ownerOf(services, collection, after, context, caller, "after");
        list = { group: holder.group, cursors: [{ endpoint: holder.endpoint, after }] };
      }
    } else {
      const group = groupFor(services.config, c.req.header(GROUP_HEADER) ?? null, null, c.get("key"));
      list = { group, cursors: fromStart(group) };
    }
    c.set("group", list.group.name);
    return reply(c, await mergedList(services, list.group, collection, query, list.cursors, context, caller));
  };
}

/** A call on one file or batch (`suffix` after its id), sent to the endpoint that holds it. */
export function objectHandler(
  services: Services,
  collection: Collection,
  method: "GET" | "POST" | "DELETE",
  suffix = "",
) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const id = c.req.param("id") ?? "";
    const context = callContext(c);
    const holder = await ownerOf(services, collection, id, context, callerOf(services, c));
    c.set("group", holder.group.name);
    const answer = await callHolder(services, holder, collection, id, context, {
      method,
      path: `${collection}/${enc(id)}${suffix}`,
      query: clientQuery(c),
      // A file's content may be large: it streams to the client as it arrives.
      passThrough: suffix === "/content",
    });
    if (method === "DELETE" && answer.status === 200) await services.objects.forget(id);
    // A batch's files belong to the batch's owner (not to an admin reading it); a file in use is kept 30 days more.
    if (collection === "batches") return reply(c, await remembered(services, answer, holder.owner));
    if (method === "GET" && suffix === "" && answer.status === 200) {
      await services.objects.remember(id, { endpoint: holder.endpoint.id, owner: holder.owner });
    }
    return reply(c, answer);
  };
}
