/**
 * `GET|DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items` and `POST /v1/responses/{id}/cancel` (a
 * background response): sent to the endpoint that produced the response. A 404 from it is a real "not found" and
 * passes through; it is never failed over.
 */

import type { Context } from "hono";
import { ProxyError } from "../../errors.ts";
import { addProxyHeaders, forwardedHeaders } from "../../proxy/pipeline.ts";
import type { Services } from "../../services.ts";
import type { AppEnv } from "./generation.ts";

export function responseItemHandler(services: Services, method: "GET" | "DELETE" | "POST", suffix = "") {
  const endpoints = new Map(
    services.config.groups.flatMap((group) => group.endpoints.map((endpoint) => [endpoint.id, endpoint])),
  );
  return async (c: Context<AppEnv>): Promise<Response> => {
    const id = c.req.param("id") ?? "";
    const owner = await services.affinity.ownerOf(id);
    const endpoint = owner ? endpoints.get(owner) : undefined;
    if (!endpoint) {
      throw new ProxyError(
        404,
        "invalid_request_error",
        "response_not_found",
        `No response with id '${
          id.slice(0, 200)
        }' went through this proxy in the last ${services.config.settings.responseAffinityTtlSeconds}s`,
        { param: "response_id" },
      );
    }
    const query = new URL(c.req.url).search.slice(1);
    const result = await services.upstream.send({
      endpoint,
      method,
      path: `responses/${encodeURIComponent(id)}${suffix}`,
      query,
      clientHeaders: c.req.raw.headers,
      requestId: c.get("requestId"),
      signal: c.req.raw.signal,
    });
    if (result.kind !== "response") {
      throw new ProxyError(
        result.kind === "timeout" ? 504 : 503,
        result.kind === "timeout" ? "timeout" : "service_unavailable",
        result.kind === "timeout" ? "upstream_timeout" : "no_healthy_endpoint",
        `The endpoint that owns response '${id.slice(0, 200)}' (${endpoint.id}) could not be reached: ${
          result.kind === "connection" ? result.message : result.kind
        }`,
      );
    }
    const { response, release } = result;
    if (method === "DELETE" && response.ok) await services.affinity.forget(id);
    // These answers are small JSON documents: read them whole, so the upstream timer can be cleared.
    const bytes = await response.bytes().finally(release);
    return new Response(bytes, {
      status: response.status,
      headers: addProxyHeaders(forwardedHeaders(response.headers), endpoint, 1, {
        requestId: c.get("requestId"),
      }),
    });
  };
}
