/** POST chat completions, responses and embeddings: read and check the body, find the group, run the pipeline. */

import type { Context } from "hono";
import { ProxyError } from "../../errors.ts";
import type { ProxyRequest } from "../../proxy/pipeline.ts";
import type { Route } from "../../upstream/providers.ts";
import type { Services } from "../../services.ts";
import { checkFields, parseJsonObject, readBodyText, streamFlag } from "../body.ts";

export type AppEnv = { Variables: { requestId: string } };

function modelNotFound(model: unknown, groups: readonly string[]): ProxyError {
  const known = groups.map((name) => `'${name}'`).join(", ");
  if (typeof model !== "string" || model === "") {
    return new ProxyError(
      400,
      "invalid_request_error",
      "model_not_found",
      `'model' must be a non-empty string naming a model group (configured: ${known})`,
      { param: "model" },
    );
  }
  return new ProxyError(
    404,
    "invalid_request_error",
    "model_not_found",
    `The model '${model.slice(0, 200)}' is not configured here; configured model groups: ${known}`,
    { param: "model" },
  );
}

export function generationHandler(services: Services, route: Route) {
  const { config, pipeline, responses } = services;
  const send = (request: ProxyRequest) => pipeline.handle(request);
  const groups = new Map(config.groups.map((group) => [group.name, group]));
  const names = config.groups.map((group) => group.name);
  return async (c: Context<AppEnv>): Promise<Response> => {
    const body = parseJsonObject(await readBodyText(c.req.raw, config.settings.maxBodyBytes));
    const group = typeof body.model === "string" ? groups.get(body.model) : undefined;
    if (!group) throw modelNotFound(body.model, names);
    const stream = streamFlag(body);
    checkFields(route, body);
    const request = {
      route,
      group,
      body,
      stream,
      clientHeaders: c.req.raw.headers,
      requestId: c.get("requestId"),
      signal: c.req.raw.signal,
    };
    if (route === "responses") return await responses.handle(request, send);
    return await send(request);
  };
}
