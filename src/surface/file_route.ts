/**
 * The routing stage of generation requests that name files (a Chat Completions `file` part, a Responses
 * `input_file` or `input_image` with `file_id`): a file exists only on the resource that holds it, so the request
 * goes to that endpoint, whatever its weight or health, as every call on the file itself does (`objects.ts`).
 * Files of two resources in one request are a 400: no endpoint can read both. An id this proxy never saw is looked
 * for once on each resource of the request's group and remembered where found, as on the files routes; a 404 from
 * every resource makes it a 404 `file_not_found` (a client key naming one was refused at admission: it is never
 * searched). The search decides nothing it cannot know: a group of one resource is not searched, and when a
 * lookup failed or was refused (a 5xx, a timeout, a 403 for a key scoped to model calls) the request is balanced
 * as if it named no file, and the upstream judges the id.
 */

import type { EndpointLoad } from "../balancer/load.ts";
import type { EndpointConfig, GroupConfig } from "../config/config.ts";
import type { GenerationRequest } from "../core/request.ts";
import { ClientGone, echoed, ProxyError } from "../errors.ts";
import type { HealthTracker } from "../health/tracker.ts";
import type { FileRef } from "../keys/file_refs.ts";
import type { Attempts } from "../proxy/attempts.ts";
import { OwnerPlan } from "../proxy/plan.ts";
import { isStoreUnavailable } from "../store/patient_read.ts";
import { isItemFailureStatus } from "../proxy/upstream_answer.ts";
import type { ObjectAffinity } from "./affinity.ts";
import { answerText } from "./call.ts";
import { searchHolder } from "./holder_search.ts";
import { resources } from "./objects.ts";

export interface FileRoutingDeps {
  readonly objects: ObjectAffinity;
  /** Every configured endpoint by id (a file's holder may sit in another group on the same resource). */
  readonly endpoints: ReadonlyMap<string, EndpointConfig>;
  /** For the search of an unknown id: one `GET /files/{id}` per resource, each at that endpoint alone. */
  readonly attempts: Attempts;
  readonly health: HealthTracker;
  readonly load: EndpointLoad;
}

/** The endpoint a request must go to, and the file that decided it (named in its errors). */
export interface FilePin {
  readonly endpoint: EndpointConfig;
  readonly fileId: string;
}

export class FileRouting {
  readonly #deps: FileRoutingDeps;

  constructor(deps: FileRoutingDeps) {
    this.#deps = deps;
  }

  /**
   * The endpoint of the request's group that holds every file it names (`refs`, at least one); `undefined` when no
   * file's holder is known or could be found (the request is balanced as usual).
   */
  async route(request: GenerationRequest, refs: readonly FileRef[]): Promise<FilePin | undefined> {
    const { objects, endpoints } = this.#deps;
    const group = request.group;
    // A holder the store cannot tell now is looked for as an unknown one (a client key's were checked at admission).
    const holders = await Promise.all(refs.map((ref) =>
      objects.holderOf(ref.id).catch((error) => {
        if (isStoreUnavailable(error)) return null;
        throw error;
      })
    ));
    let pin: (FilePin & { param: string }) | undefined;
    for (let i = 0; i < refs.length; i++) {
      const ref = refs[i];
      const held = holders[i]?.endpoint;
      const endpoint = held === undefined
        ? await this.#search(request, ref)
        : inGroup(group, endpoints.get(held), held) ?? notInGroup(ref, held, group);
      if (!endpoint) continue; // searched, not known to be anywhere: the upstream judges it
      if (pin && !sameResource(pin.endpoint, endpoint)) throw conflicting(pin, { ...ref, endpoint });
      pin ??= { endpoint, fileId: ref.id, param: ref.param };
    }
    return pin && { endpoint: pin.endpoint, fileId: pin.fileId };
  }

  /**
   * A Responses request's pin when its conversation is owned by endpoint `owner`: the owner, when it is on the
   * files' resource (it can read them); else a 400, since no endpoint can read both.
   */
  withOwner(pin: FilePin, owner: string): FilePin {
    const endpoint = this.#deps.endpoints.get(owner);
    if (endpoint && sameResource(endpoint, pin.endpoint)) return { ...pin, endpoint };
    throw conversationElsewhere(pin, owner);
  }

  /**
   * The resource of the request's group that has file `ref` (remembered), asked one after the other. A 404 from
   * each: a 404 to the client. `undefined` when there is nothing to choose (one resource) or a lookup did not say.
   */
  async #search(request: GenerationRequest, ref: FileRef): Promise<EndpointConfig | undefined> {
    const { objects, attempts, health, load } = this.#deps;
    const path = `files/${encodeURIComponent(ref.id)}`;
    const candidates = resources(request.group);
    if (candidates.length < 2) return undefined;
    const found = await searchHolder(objects, ref.id, candidates, async (endpoint) => {
      const call = {
        method: "GET" as const,
        path,
        json: false,
        failure: isItemFailureStatus,
        wrapErrors: false,
        group: request.group.name,
        clientHeaders: request.clientHeaders,
        requestId: request.requestId,
        signal: request.signal,
        trace: request.trace,
      };
      const served = await attempts.run(call, new OwnerPlan(endpoint, ref.id, health, load, "file")).catch(
        () => {
          if (request.signal.aborted) throw new ClientGone();
        },
      );
      if (!served) return undefined; // failed: down, 5xx, timeout
      await answerText(served.answer); // read to its end: the connection is reused
      return served.answer.status;
    });
    if (found !== "absent") return found === "unsure" ? undefined : found;
    throw new ProxyError(
      404,
      "invalid_request_error",
      "file_not_found",
      `No file '${
        short(ref.id)
      }' is known to this proxy or held by an endpoint of model group '${request.group.name}'`,
      { param: ref.param },
    );
  }
}

/** Endpoints on one provider and base URL see the same files. */
const sameResource = (a: EndpointConfig, b: EndpointConfig) =>
  a.id === b.id || (a.provider === b.provider && a.baseUrl === b.baseUrl);

/** The group's endpoint that is `holder`, or else one on the same resource (same provider and base URL). */
function inGroup(
  group: GroupConfig,
  holder: EndpointConfig | undefined,
  id: string,
): EndpointConfig | undefined {
  const same = group.endpoints.find((endpoint) => endpoint.id === id);
  if (same || !holder) return same;
  return group.endpoints.find((endpoint) =>
    endpoint.provider === holder.provider && endpoint.baseUrl === holder.baseUrl
  );
}

const short = echoed;

function notInGroup(ref: FileRef, holder: string, group: GroupConfig): never {
  throw new ProxyError(
    400,
    "invalid_request_error",
    "file_not_in_model_group",
    `File '${short(ref.id)}' is held by endpoint ${holder}, and no endpoint of model group '${group.name}' ` +
      "is on its resource: use a model of a group that can read it",
    { param: ref.param },
  );
}

function conflicting(
  first: FilePin & { param: string },
  second: FileRef & { endpoint: EndpointConfig },
): ProxyError {
  return new ProxyError(
    400,
    "invalid_request_error",
    "conflicting_files",
    `This request names files held by different endpoints: '${short(first.fileId)}' (${first.param}) on ` +
      `${first.endpoint.id} and '${
        short(second.id)
      }' (${second.param}) on ${second.endpoint.id}; one request ` +
      "can only read files of one resource: upload them through the same endpoint",
    { param: second.param },
  );
}

/** A Responses request whose conversation lives on another resource than the files it names. */
function conversationElsewhere(pin: FilePin, owner: string): ProxyError {
  return new ProxyError(
    400,
    "invalid_request_error",
    "conflicting_files",
    `This request continues a conversation held by endpoint ${owner}, but names file '${
      short(pin.fileId)
    }' ` +
      `held by endpoint ${pin.endpoint.id}; no endpoint can read both: upload the file through ${owner}`,
    { param: "input" },
  );
}
