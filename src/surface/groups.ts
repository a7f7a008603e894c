/**
 * Which model group a request of the routes beyond generation is for: the `x-llmproxy-model-group` header (the
 * SDK's extra headers), else the request's `model`, else the only group when one is configured. Uploads and batch
 * calls carry no model, so the header or a single group is how they find their endpoints.
 */

import type { Config, GroupConfig } from "../config/config.ts";
import { ProxyError } from "../errors.ts";

export const GROUP_HEADER = "x-llmproxy-model-group";

export function groupFor(config: Config, header: string | null, model?: string | null): GroupConfig {
  const wanted = header ?? model ?? null;
  if (wanted !== null) {
    const group = config.groups.find((g) => g.name === wanted);
    if (group) return group;
    throw new ProxyError(
      404,
      "invalid_request_error",
      "model_not_found",
      `The model group '${wanted.slice(0, 200)}' is not configured here; configured model groups: ${
        names(config)
      }`,
      { param: header !== null ? GROUP_HEADER : "model" },
    );
  }
  if (config.groups.length === 1) return config.groups[0];
  throw new ProxyError(
    400,
    "invalid_request_error",
    "model_group_required",
    `This request names no model group and ${config.groups.length} are configured (${
      names(config)
    }): send the ` +
      `'${GROUP_HEADER}' header`,
    { param: GROUP_HEADER },
  );
}

const names = (config: Config) => config.groups.map((group) => `'${group.name}'`).join(", ");

/** The endpoint with this id, in any group. */
export function endpointById(config: Config, id: string) {
  for (const group of config.groups) {
    const endpoint = group.endpoints.find((e) => e.id === id);
    if (endpoint) return { group, endpoint };
  }
  return undefined;
}
