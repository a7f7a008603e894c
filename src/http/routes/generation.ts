/**
 * POST chat completions, responses and embeddings: read and check the body, find the group, hand the request to the
 * pipeline, and make its answer a Response.
 */

import { headersOf, type RequestContext } from "../request_context.ts";
import { ModelNames } from "../../balancer/model_names.ts";
import { echoed, ProxyError } from "../../errors.ts";
import type { KeyPolicy } from "../../keys/policy.ts";
import type { BodyHold } from "../body_pool.ts";
import type { RequestTrace } from "../../metrics/metrics.ts";
import type { Route } from "../../core/route.ts";
import { overheadHeader } from "../../metrics/request_trace.ts";
import type { Services } from "../../services.ts";
import { noteSize } from "../../util/heavy.ts";
import { checkFields, parseJsonBody, readBodyText, streamFlag } from "../body.ts";
import { mergeExtraBody } from "../extra_body.ts";
import { pythonHeaders, withCacheMarker } from "../python_markers.ts";
import { respond } from "../respond.ts";
import { clientSignal } from "../served_request.ts";
import { askForUsage, asksForUsage, withoutUsageChunk } from "../../usage/stream_usage_option.ts";

export type AppEnv = {
  Variables: {
    requestId: string;
    /** The configured model group, once the body named one (for metrics and the access log). */
    group: string;
    /** Set by the observing middleware; the pipeline adds upstream time to it. */
    trace: RequestTrace;
    /** The caller's key, set by the auth middleware; undefined when the proxy needs none and none was sent. */
    key: KeyPolicy | undefined;
    /** A body of unknown length's bytes in the body pool, set by `inflightBodies`; undefined for any other. */
    bodyHold: BodyHold | undefined;
  };
};

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
    `The model '${echoed(model)}' is not configured here; configured model groups: ${known}`,
    { param: "model" },
  );
}

export function generationHandler(services: Services, route: Route) {
  const { config, pipeline } = services;
  const models = new ModelNames(config.groups);
  const names = models.listed();
  return async (c: RequestContext<AppEnv>): Promise<Response> => {
    const text = await readBodyText(
      c.req.raw,
      config.settings.maxBodyBytes,
      config.settings.limits.bodyTimeoutMs,
      headersOf(c),
      c.get("bodyHold"),
    );
    const parsed = parseJsonBody(text, config.settings.maxBodyItems); // a promise only for a big body
    const body = mergeExtraBody(parsed instanceof Promise ? await parsed : parsed);
    const key = c.get("key");
    const found = typeof body.model === "string" ? models.resolve(body.model) : undefined;
    // A group the key may not use answers exactly like one that does not exist, listing only the key's groups.
    const group = found && (!key || key.allows(found.name)) ? found : undefined;
    if (!group) {
      throw modelNotFound(
        body.model,
        key ? names.filter((name) => key.allows(models.resolve(name)?.name ?? name)) : names,
      );
    }
    c.set("group", group.name);
    const stream = streamFlag(body);
    checkFields(route, body);
    const requestId = c.get("requestId");
    const trace = c.get("trace");
    // A key's streamed chat is counted: its usage is asked of the upstream and taken out again for the client.
    const countStream = key !== undefined && stream && route === "chat" && !asksForUsage(body);
    const asked = await pipeline.generate({
      kind: "generation",
      route,
      group,
      body: noteSize(countStream ? askForUsage(body) : body, text.length), // big bodies are worked on piece by piece
      stream,
      clientHeaders: headersOf(c),
      requestId,
      signal: clientSignal(c.req.raw),
      trace,
    });
    const answer = countStream ? withoutUsageChunk(asked) : asked;
    const now = performance.now();
    const marked = config.settings.pythonCacheMarker && !stream ? withCacheMarker(answer) : answer;
    const headers = pythonHeaders(answer.meta.cache, now - trace.startedAt);
    // The proxy's own share of the time to this answer's headers (Bifrost and LiteLLM offer the same figure).
    headers["x-llmproxy-overhead-ms"] = overheadHeader(trace, now);
    return respond(marked, requestId, trace, headers);
  };
}
