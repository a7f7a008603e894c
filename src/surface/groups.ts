/**
 * Which model group a request of the routes beyond generation is for: the `x-llmproxy-model-group` header (the
 * SDK's extra headers), else the request's `model` (a group name or alias), else the only group the caller may use.
 * Uploads and batch calls carry no model, so the header or a single group is how they find their endpoints. A
 * group the caller's key may not use answers like one that does not exist, as for chat.
 */

import { ModelNames } from "../balancer/model_names.ts";
import type { Config, GroupConfig } from "../config/config.ts";
import { echoed, ProxyError } from "../errors.ts";

export const GROUP_HEADER = "x-llmproxy-model-group";

/** What the caller's key allows; absent when the proxy needs no key. */
export interface GroupAccess {
  readonly allows: (group: string) => boolean;
}

const namesOf = new WeakMap<Config, ModelNames>();

export function groupFor(
  config: Config,
  header: string | null,
  model?: string | null,
  key?: GroupAccess,
): GroupConfig {
  let names = namesOf.get(config);
  if (!names) namesOf.set(config, names = new ModelNames(config.groups));
  const usable = config.groups.filter((group) => !key || key.allows(group.name));
  const wanted = header ?? model ?? null;
  if (wanted !== null) {
    const group = names.resolve(wanted);
    if (group && usable.includes(group)) return group;
    throw new ProxyError(
      404,
      "invalid_request_error",
      "model_not_found",
      `The model group '${echoed(wanted)}' is not configured here; configured model groups: ${list(usable)}`,
      { param: header !== null ? GROUP_HEADER : "model" },
    );
  }
  if (usable.length === 1) return usable[0];
  throw new ProxyError(
    400,
    "invalid_request_error",
    "model_group_required",
    `This request names no model group and ${usable.length} are configured (${list(usable)}): send the ` +
      `'${GROUP_HEADER}' header`,
    { param: GROUP_HEADER },
  );
}

const list = (groups: readonly GroupConfig[]) => groups.map((group) => `'${group.name}'`).join(", ");

/** The endpoint with this id, in any group. */
export function endpointById(config: Config, id: string) {
  for (const group of config.groups) {
    const endpoint = group.endpoints.find((e) => e.id === id);
    if (endpoint) return { group, endpoint };
  }
  return undefined;
}
