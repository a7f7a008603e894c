/**
 * Audio, images and moderations, load balanced and failed over over the group's endpoints like chat, never
 * cached. JSON requests (speech, image generations, moderations) are read whole and sent with each endpoint's
 * model; forms (transcriptions, translations, image edits) stream upstream with their `model` field rewritten per
 * endpoint. Answers stream back as they arrive (speech's binary audio included). Their usage is counted per key
 * like chat's (`usage/relay_usage.ts`).
 */

import type { Context } from "hono";
import type { GroupConfig } from "../../config/config.ts";
import { invalidRequest, ProxyError } from "../../errors.ts";
import { boundaryOf } from "../../multipart/scanner.ts";
import type { Services } from "../../services.ts";
import { GROUP_HEADER, groupFor } from "../../surface/groups.ts";
import { relayRequest, upstreamCall } from "../../surface/call.ts";
import { isFailoverStatus } from "../../proxy/upstream_answer.ts";
import { replacedField } from "../../surface/form_field.ts";
import { openForm, openUpload, type UploadBody } from "../../surface/upload.ts";
import { relayUsage } from "../../usage/relay_usage.ts";
import { parseJsonBody, readBodyText, refuseCoding } from "../body.ts";
import { callContext, reply } from "./files.ts";
import type { AppEnv } from "./generation.ts";

export type JsonMedia = "audio/speech" | "images/generations" | "moderations";
export type FormMedia = "audio/transcriptions" | "audio/translations" | "images/edits";

/** A JSON request: `model` names the group (or the header does); each endpoint gets its own model. */
export function jsonMediaHandler(services: Services, path: JsonMedia) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const body = await parseJsonBody(
      await readBodyText(
        c.req.raw,
        services.config.settings.maxBodyBytes,
        services.config.settings.limits.bodyTimeoutMs,
        undefined,
        c.get("bodyHold"),
      ),
      services.config.settings.maxBodyItems,
    );
    const model = typeof body.model === "string" ? body.model : null;
    if (body.model !== undefined && model === null) throw invalidRequest("'model' must be a string", "model");
    const group = groupFor(services.config, c.req.header(GROUP_HEADER) ?? null, model, c.get("key"));
    c.set("group", group.name);
    const context = callContext(c);
    const exclude = path === "moderations" ? azureOnly(group) : undefined;
    const request = {
      ...relayRequest(context, group, path, { kind: "group", exclude }),
      record: relayUsage(services, { group, route: path, requestId: context.requestId }),
    };
    const streams = path === "audio/speech" || body.stream === true;
    const call = upstreamCall(context, group, {
      method: "POST",
      path,
      body: (endpoint) => JSON.stringify({ ...body, model: endpoint.model }),
      // Speech is binary audio, and an image generation asked to stream (gpt-image's partial images) is events:
      // both passed on as they arrive, not read whole as JSON (a stream is no malformed answer of the endpoint).
      passThrough: streams,
      json: !streams,
      failure: isFailoverStatus,
    });
    return reply(c, (await services.pipeline.relay(request, call)).answer);
  };
}

/** Azure has no moderations route: its endpoints are left out, and a group made only of them is a 400. */
function azureOnly(group: GroupConfig): string[] {
  const azure = group.endpoints.filter((endpoint) => endpoint.provider === "azure").map((endpoint) =>
    endpoint.id
  );
  if (azure.length === group.endpoints.length) {
    throw new ProxyError(
      400,
      "invalid_request_error",
      "unsupported_route",
      `Model group '${group.name}' has only Azure OpenAI endpoints, and Azure OpenAI has no moderations route`,
      { param: "model" },
    );
  }
  return azure;
}

/** A form: the group from the header or the form's `model`; the form streams to each endpoint with its model. */
export function formMediaHandler(services: Services, path: FormMedia) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const contentType = c.req.header("content-type") ?? null;
    const boundary = boundaryOf(contentType);
    if (!boundary) throw invalidRequest(`POST /v1/${path} takes a multipart/form-data body`);
    refuseCoding(c.req.header("content-encoding"));
    const declared = c.req.header("content-length");
    const length = declared === undefined ? null : Number(declared);
    const header = c.req.header(GROUP_HEADER) ?? null;
    let upload: UploadBody;
    let model: string | null = null;
    let holding = 0;
    if (header !== null) ({ upload, holding } = await openUpload(c.req.raw.body, length, services.bodyPool));
    else ({ upload, model, holding } = await openForm(c.req.raw.body, boundary, length, services.bodyPool));
    try {
      return await relayForm(services, c, path, { upload, model, boundary, contentType: contentType! });
    } finally {
      services.bodyPool.give(holding);
    }
  };
}

/** Sends an opened form to the group's endpoints in turn. */
async function relayForm(
  services: Services,
  c: Context<AppEnv>,
  path: FormMedia,
  form: { upload: UploadBody; model: string | null; boundary: string; contentType: string },
): Promise<Response> {
  const { upload, model, boundary, contentType } = form;
  const group = groupFor(services.config, c.req.header(GROUP_HEADER) ?? null, model, c.get("key"));
  c.set("group", group.name);
  const context = callContext(c);
  const request = {
    ...relayRequest(context, group, path, { kind: "group" }, upload.unresendable),
    record: relayUsage(services, { group, route: path, requestId: context.requestId }),
  };
  const call = upstreamCall(context, group, {
    method: "POST",
    path,
    // Written out chunk by chunk through the upload's one buffer, like a file upload.
    body: (endpoint) => replacedField(upload.chunks(), boundary, "model", endpoint.model),
    contentType,
    // A transcription may stream (`stream: true`) or be text: passed on as it arrives.
    passThrough: true,
    failure: isFailoverStatus,
  });
  return reply(c, (await services.pipeline.relay(request, call)).answer);
}
