/**
 * Calls on files and batches that live on one endpoint: find the endpoint that holds an id (the store's affinity,
 * else asking each resource of the group once and remembering the one that has it) and send a call there (lists of
 * all the group's resources are merged in `merged_list.ts`). A client key reaches only the objects it owns
 * (`ownership.ts`).
 */

import type { Config, EndpointConfig, GroupConfig } from "../config/config.ts";
import type { Answer } from "../core/answer.ts";
import type { AttemptOutcome } from "../balancer/exhausted.ts";
import { echoed, ProxyError } from "../errors.ts";
import type { Pipeline } from "../proxy/pipeline.ts";
import { isStoreUnavailable } from "../store/patient_read.ts";
import { isItemFailureStatus } from "../proxy/upstream_answer.ts";
import type { ObjectAffinity } from "./affinity.ts";
import { answerText, type CallContext, type CallSpec, relayRequest, upstreamCall } from "./call.ts";
import { endpointById, GROUP_HEADER, groupFor } from "./groups.ts";
import { searchHolder } from "./holder_search.ts";
import { mayUse, type ObjectCaller, ownOnly } from "./ownership.ts";

export interface ObjectDeps {
  readonly config: Config;
  readonly pipeline: Pipeline;
  readonly objects: ObjectAffinity;
}

export type Collection = "files" | "batches";

const WHAT: Readonly<Record<Collection, string>> = { files: "file", batches: "batch" };

/** One endpoint per upstream resource of the group: endpoints on one base URL see the same files and batches. */
export function resources(group: GroupConfig): EndpointConfig[] {
  const seen = new Map<string, EndpointConfig>();
  for (const endpoint of group.endpoints) {
    const key = `${endpoint.provider} ${endpoint.baseUrl}`;
    if (!seen.has(key)) seen.set(key, endpoint);
  }
  return [...seen.values()];
}

/**
 * Sends one call to the endpoint that holds object `id`; its answer passes through whatever it is. `creates`: the
 * call makes one of these upstream (a batch), so it is charged to the caller's key like an upload, and it is sent at
 * most once (`UpstreamCall.once`): after an attempt the endpoint may have taken (a 5xx, a timeout, a connection lost
 * once the request went), the client is told that it may have been made.
 */
export async function callHolder(
  deps: ObjectDeps,
  holder: { group: GroupConfig; endpoint: EndpointConfig },
  collection: Collection,
  id: string,
  context: CallContext,
  spec: Omit<CallSpec, "failure">,
  options: { readonly creates?: Collection } = {},
): Promise<Answer> {
  const target = { kind: "holder" as const, endpoint: holder.endpoint, id, what: WHAT[collection] };
  const creates = options.creates !== undefined;
  const unresendable = options.creates && mayHaveMade(options.creates);
  const request = { ...relayRequest(context, holder.group, spec.path, target, unresendable), creates };
  const call = upstreamCall(context, holder.group, { ...spec, failure: isItemFailureStatus, once: creates });
  return (await deps.pipeline.relay(request, call)).answer;
}

/**
 * Why a call that makes a `what` each time it is received is not sent again after `outcome`: undefined when the
 * endpoint cannot have taken it (an answer below 500, a connection never made).
 */
const mayHaveMade = (made: Collection) => (outcome: AttemptOutcome): string | undefined =>
  (outcome.kind === "status" ? outcome.status < 500 : outcome.kind === "connection" && outcome.unsent)
    ? undefined
    : `after the request had been sent to it; it may have made the ${
      WHAT[made]
    }, so the request is not sent ` +
      `again (that could make it twice): list the ${made} before sending it again`;

/** An object's endpoint, its group and its owner (null: none). */
export interface HeldObject {
  readonly group: GroupConfig;
  readonly endpoint: EndpointConfig;
  readonly owner: string | null;
}

/**
 * The endpoint that holds `id`, when the caller may use it. Unknown to the store (or the store cannot say now): for
 * an admin key or a keyless caller, each resource of the group (the header's, or the only one) is asked for it, and
 * the first that has it is remembered (a 404 from every one: a 404; a lookup that failed or was refused: a 502,
 * since it may exist); a client key is not searched for (its own objects are all recorded) and gets the 404, or
 * the 503 `store_unavailable` when the store cannot say (so does anyone when no group can be searched).
 */
export async function ownerOf(
  deps: ObjectDeps,
  collection: Collection,
  id: string,
  context: CallContext,
  caller: ObjectCaller | null,
  /** What the client called the id, for the 404's `param`: the object's own id by default. */
  param = `${WHAT[collection]}_id`,
): Promise<HeldObject> {
  // A client key is not searched for: it is told when the store cannot say (503). Others are searched for.
  const read = await deps.objects.holderOf(id).then((holder) => ({ holder, unknown: undefined }), (error) => {
    if (!isStoreUnavailable(error) || ownOnly(caller)) throw error;
    return { holder: null, unknown: error };
  });
  const known = read.holder;
  const found = known !== null ? endpointById(deps.config, known.endpoint) : undefined;
  // An object of another key, or in a group the caller's key may not use, is answered like one that does not exist.
  if (found && known && mayUse(known, caller) && (!caller || caller.allows(found.group.name))) {
    return { ...found, owner: known.owner };
  }
  const header = context.clientHeaders.get(GROUP_HEADER);
  const group = !ownOnly(caller) && (header !== null || deps.config.groups.length === 1)
    ? groupFor(deps.config, header, null, caller ?? undefined)
    : undefined;
  const search = group
    ? await searchHolder(deps.objects, id, resources(group), async (endpoint) => {
      try {
        const answer = await callHolder(deps, { group, endpoint }, collection, id, context, {
          method: "GET",
          path: `${collection}/${enc(id)}`,
        });
        await answerText(answer); // read to its end: the connection is reused
        return answer.status;
      } catch (error) {
        if (context.signal.aborted) throw error;
        return undefined;
      }
    })
    : "absent";
  if (group && typeof search === "object") return { group, endpoint: search, owner: known?.owner ?? null };
  if (group && search === "unsure") {
    throw new ProxyError(
      502,
      "server_error",
      "upstream_failed",
      `Could not tell whether ${WHAT[collection]} '${echoed(id)}' exists: looking for it on an endpoint of ` +
        `model group '${group.name}' failed or was refused; try again`,
    );
  }
  if (!group && read.unknown) throw read.unknown;
  throw new ProxyError(
    404,
    "invalid_request_error",
    `${WHAT[collection]}_not_found`,
    `No ${WHAT[collection]} '${echoed(id)}' is known to this proxy${
      group
        ? ` or held by an endpoint of model group '${group.name}'`
        : ownOnly(caller)
        ? " for this key"
        : ` (send the '${GROUP_HEADER}' header to search a group)`
    }`,
    { param },
  );
}

export const enc = encodeURIComponent;
