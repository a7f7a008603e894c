/**
 * The simulated upstream's answer to a request that passed its behaviour and auth checks: the route is looked up
 * (any of the three URL layouts) and handed to the builder of that family. Builders throw `Rejection` for a 4xx.
 */

import { images, moderation } from "./images.ts";
import { speech, transcribe } from "./audio.ts";
import type { BatchBook } from "./batches.ts";
import { chatCompletion, chatStreamFrames } from "./chat.ts";
import { isObject, type Json, type SimContext } from "./content.ts";
import { embeddingList } from "./embeddings.ts";
import type { FileBook } from "./files.ts";
import { type FileRef, fileRefs } from "../keys/file_refs.ts";
import type { SimForm } from "./form.ts";
import { realtimeSession, type RealtimeSockets } from "./realtime.ts";
import type { Replies } from "./reply.ts";
import type { ResponseBook } from "./responses.ts";
import { responseStreamFrames } from "./response_stream.ts";
import { type Route, route } from "./route.ts";

/** What the sim holds that answers read. */
export interface SimState {
  readonly name: string;
  readonly replies: Replies;
  readonly responses: ResponseBook;
  readonly files: FileBook;
  readonly batches: BatchBook;
  readonly sockets: RealtimeSockets;
  /** The model listed by `GET /models`. */
  readonly model: string;
  readonly created: number;
  readonly chunks: number;
  readonly chunkDelayMs: number;
  readonly id: (prefix: string) => string;
  readonly lenientLists: boolean;
}

export interface SimRequest {
  readonly request: Request;
  readonly url: URL;
  /** Parsed JSON, the raw text, or undefined; a multipart body is in `form` instead. */
  readonly body: unknown;
  readonly form?: SimForm;
  readonly bodyLength: number;
  /** Frames to send before cutting a stream (a `cut` behaviour). */
  readonly cutAfter?: number;
}

export function dispatch(sim: SimState, request: SimRequest): Response {
  const { url } = request;
  const method = request.request.method;
  const { replies } = sim;
  const target = route(method, url.pathname);
  if (!target) return replies.fail(404, `Unknown route ${method} ${url.pathname} on sim '${sim.name}'`, null);
  if (target.layout === "azure" && !url.searchParams.has("api-version")) {
    return replies.fail(400, "Missing required query parameter 'api-version'", "missing_api_version");
  }
  const ctx: SimContext = { name: sim.name, id: sim.id, chunks: sim.chunks, bodyLength: request.bodyLength };
  return objectRoute(sim, target, request, ctx) ?? formRoute(sim, target, request, ctx) ??
    jsonRoute(sim, target, request, ctx);
}

/** Routes on stored objects and lists: no body. */
function objectRoute(
  sim: SimState,
  target: Route,
  request: SimRequest,
  ctx: SimContext,
): Response | undefined {
  const { replies, responses, files, batches } = sim;
  const search = request.url.searchParams;
  if (!("id" in target)) {
    switch (target.kind) {
      case "models":
        return replies.json(200, {
          object: "list",
          data: [{ id: sim.model, object: "model", created: sim.created, owned_by: `sim-${sim.name}` }],
        });
      case "list-files":
      case "list-batches": {
        // OpenAI's bounds: files pages of at most 10,000, batches of 100; `order` asc or desc (files only).
        const refused = sim.lenientLists
          ? undefined
          : listRefusal(search, target.kind === "list-files" ? 10_000 : 100);
        if (refused) return replies.fail(400, refused.message, refused.code, refused.param);
        return replies.json(200, target.kind === "list-files" ? files.list(search) : batches.list(search));
      }
      case "realtime": {
        const model = search.get("model") ?? search.get("deployment") ?? "";
        if (!model) return replies.fail(400, "Missing required query parameter 'model'", null, "model");
        return realtimeSession(request.request, model, ctx, sim.sockets);
      }
    }
    return undefined;
  }
  const { id } = target;
  switch (target.kind) {
    case "response":
      return replies.found("Response", id, responses.get(id));
    case "delete-response": {
      const deleted = responses.delete(id);
      return replies.found("Response", id, deleted ? { id, object: "response.deleted", deleted } : undefined);
    }
    case "cancel-response":
      return replies.found("Response", id, responses.cancel(id));
    case "input-items":
      return replies.found("Response", id, responses.inputItems(id, search));
    case "file":
      return replies.found("File", id, files.get(id));
    case "delete-file":
      return replies.found("File", id, files.delete(id));
    case "file-content": {
      const content = files.content(id);
      return content === undefined
        ? replies.found("File", id, undefined)
        : replies.raw(content, "application/octet-stream");
    }
    case "batch":
      return replies.found("Batch", id, batches.get(id, files, ctx));
    case "cancel-batch":
      return replies.found("Batch", id, batches.cancel(id));
  }
}

/** Routes whose body is a multipart form: file uploads, audio input and image edits. */
function formRoute(sim: SimState, target: Route, request: SimRequest, ctx: SimContext): Response | undefined {
  const { replies } = sim;
  const kind = target.kind;
  if (
    kind !== "create-file" && kind !== "transcriptions" && kind !== "translations" && kind !== "image-edits"
  ) {
    return undefined;
  }
  const form = request.form;
  if (!form) return replies.fail(400, "This route takes a multipart/form-data body.", "invalid_content_type");
  if (kind === "create-file") return replies.json(200, sim.files.upload(form, ctx.id));
  const model = ("deployment" in target ? target.deployment : null) ?? form.fields.model ?? "";
  if (kind === "image-edits") return replies.json(200, images(form, model, ctx));
  const transcript = transcribe(form, model, ctx, kind === "translations");
  switch (transcript.kind) {
    case "json":
      return replies.json(200, transcript.value);
    case "text":
      return replies.raw(transcript.text, "text/plain; charset=utf-8");
    case "sse":
      return replies.sse(transcript.frames, sim.chunkDelayMs, request.cutAfter);
  }
}

/** Routes whose body is a JSON object. */
function jsonRoute(sim: SimState, target: Route, request: SimRequest, ctx: SimContext): Response {
  const { replies } = sim;
  const body = request.body;
  if (!isObject(body)) {
    return replies.fail(400, "We could not parse the JSON body of your request.", "invalid_json");
  }
  const stream = body.stream === true;
  const missing = target.kind === "responses" || target.kind === "chat"
    ? missingFile(sim.files, body)
    : undefined;
  if (missing) {
    return replies.fail(
      400,
      `Invalid file id '${missing.id}': no such file.`,
      "invalid_value",
      missing.param,
    );
  }
  switch (target.kind) {
    case "responses": {
      const response = sim.responses.create(body, ctx, stream);
      return stream
        ? replies.sse(responseStreamFrames(response, ctx.chunks), sim.chunkDelayMs, request.cutAfter)
        : replies.json(200, response);
    }
    case "create-batch":
      return replies.json(200, sim.batches.create(body, sim.files, ctx));
    case "moderations":
      return replies.json(200, moderation(body, ctx));
  }
  const model = ("deployment" in target ? target.deployment : null) ??
    (typeof body.model === "string" ? body.model : "");
  if (model === "") return replies.fail(400, "You must provide a model parameter.", "missing_model", "model");
  switch (target.kind) {
    case "embeddings":
      return replies.json(200, embeddingList(body, model));
    case "image-generations":
      return replies.json(200, images(body as Json, model, ctx));
    case "speech": {
      const audio = speech(body, model, ctx);
      return replies.raw(replies.frames(audio.pieces, sim.chunkDelayMs, request.cutAfter), audio.type);
    }
  }
  return stream
    ? replies.sse(chatStreamFrames(body, model, ctx), sim.chunkDelayMs, request.cutAfter)
    : replies.json(200, chatCompletion(body, model, ctx));
}

/** The first file a generation body names that this sim does not hold: another resource's files are not here. */
function missingFile(files: FileBook, body: Json): FileRef | undefined {
  return fileRefs(body).find((ref) => files.get(ref.id) === undefined);
}

/** Why a list query is invalid, as OpenAI words it; undefined when it is valid. */
function listRefusal(
  search: URLSearchParams,
  max: number,
): { message: string; code: string; param: string } | undefined {
  const limit = search.get("limit");
  if (limit !== null) {
    const n = Number(limit);
    if (!Number.isInteger(n) || limit.trim() === "") {
      return {
        message: `Invalid 'limit': expected an integer, but got '${limit}' instead.`,
        code: "invalid_type",
        param: "limit",
      };
    }
    if (n > max) {
      return {
        message:
          `Invalid 'limit': integer above maximum value. Expected a value <= ${max}, but got ${n} instead.`,
        code: "integer_above_max_value",
        param: "limit",
      };
    }
    if (n < 1) {
      return {
        message: `Invalid 'limit': integer below minimum value. Expected a value >= 1, but got ${n} instead.`,
        code: "integer_below_min_value",
        param: "limit",
      };
    }
  }
  const order = search.get("order");
  if (order !== null && order !== "asc" && order !== "desc") {
    return {
      message: `Invalid value: '${order}'. Supported values are: 'asc' and 'desc'.`,
      code: "invalid_value",
      param: "order",
    };
  }
  return undefined;
}
