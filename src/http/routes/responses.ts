/**
 * `GET|DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items` and `POST /v1/responses/{id}/cancel` (a
 * background response): handed to the pipeline, which sends them to the endpoint that produced the response. A 404
 * from it is a real "not found" and passes through; it is never failed over.
 */

import type { Context } from "hono";
import type { ItemRequest } from "../../core/request.ts";
import type { Services } from "../../services.ts";
import { endpointById } from "../../surface/groups.ts";
import { FORWARDED_QUERY, forwardedQuery } from "../../upstream/forwarding.ts";
import { respond } from "../respond.ts";
import type { AppEnv } from "./generation.ts";

export function responseItemHandler(
  services: Services,
  method: ItemRequest["method"],
  suffix: ItemRequest["suffix"] = "",
) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const requestId = c.get("requestId");
    const trace = c.get("trace");
    const answer = await services.pipeline.item({
      kind: "item",
      method,
      responseId: c.req.param("id") ?? "",
      suffix,
      // Only the parameters this route documents reach the upstream; `api-version` is always the endpoint's.
      query: forwardedQuery(new URL(c.req.url).search, FORWARDED_QUERY[suffix]),
      clientHeaders: c.req.raw.headers,
      requestId,
      signal: c.req.raw.signal,
      trace,
    });
    // Its series and log line name the group of the endpoint that answered, as a generation request's do.
    const held = endpointById(services.config, answer.meta.endpoint);
    if (held) c.set("group", held.group.name);
    return respond(answer, requestId, trace);
  };
}
