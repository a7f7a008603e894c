/**
 * The simulated upstream's answer to a request that passed its behaviour and auth checks: the route is looked up
 * (any of the three URL layouts) and handed to the builder of that family. Throws `Rejection` for a 4xx.
 */

import { chatCompletion, chatStreamFrames } from "./chat.ts";
import { isObject, type SimContext } from "./content.ts";
import { embeddingList } from "./embeddings.ts";
import type { Replies } from "./reply.ts";
import type { ResponseBook } from "./responses.ts";
import { responseStreamFrames } from "./response_stream.ts";
import { route } from "./route.ts";

/** What the sim holds that answers read. */
export interface SimState {
  readonly name: string;
  readonly replies: Replies;
  readonly responses: ResponseBook;
  /** The model listed by `GET /models`. */
  readonly model: string;
  readonly created: number;
  readonly chunks: number;
  readonly chunkDelayMs: number;
  readonly id: (prefix: string) => string;
}

export interface SimRequest {
  readonly url: URL;
  readonly method: string;
  /** Parsed JSON, the raw text, or undefined. */
  readonly body: unknown;
  readonly bodyLength: number;
  /** Frames to send before cutting a stream (a `cut` behaviour). */
  readonly cutAfter?: number;
}

export function dispatch(sim: SimState, request: SimRequest): Response {
  const { url, method, body } = request;
  const { replies } = sim;
  const target = route(method, url.pathname);
  if (!target) return replies.fail(404, `Unknown route ${method} ${url.pathname} on sim '${sim.name}'`, null);
  if (target.layout === "azure" && !url.searchParams.has("api-version")) {
    return replies.fail(400, "Missing required query parameter 'api-version'", "missing_api_version");
  }
  const ctx: SimContext = { name: sim.name, id: sim.id, chunks: sim.chunks, bodyLength: request.bodyLength };
  const book = sim.responses;
  switch (target.kind) {
    case "models":
      return replies.json(200, {
        object: "list",
        data: [{ id: sim.model, object: "model", created: sim.created, owned_by: `sim-${sim.name}` }],
      });
    case "response":
      return replies.found("Response", target.id, book.get(target.id));
    case "delete-response": {
      const deleted = book.delete(target.id);
      const value = deleted ? { id: target.id, object: "response.deleted", deleted } : undefined;
      return replies.found("Response", target.id, value);
    }
    case "cancel-response":
      return replies.found("Response", target.id, book.cancel(target.id));
    case "input-items":
      return replies.found("Response", target.id, book.inputItems(target.id, url.searchParams));
  }
  if (!isObject(body)) {
    return replies.fail(400, "We could not parse the JSON body of your request.", "invalid_json");
  }
  const stream = body.stream === true;
  if (target.kind === "responses") {
    const response = book.create(body, ctx, stream);
    return stream
      ? replies.sse(responseStreamFrames(response, ctx.chunks), sim.chunkDelayMs, request.cutAfter)
      : replies.json(200, response);
  }
  const model = target.deployment ?? (typeof body.model === "string" ? body.model : "");
  if (model === "") return replies.fail(400, "You must provide a model parameter.", "missing_model", "model");
  if (target.kind === "embeddings") return replies.json(200, embeddingList(body, model));
  return stream
    ? replies.sse(chatStreamFrames(body, model, ctx), sim.chunkDelayMs, request.cutAfter)
    : replies.json(200, chatCompletion(body, model, ctx));
}
