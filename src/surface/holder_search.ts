/**
 * The search for the resource that holds an object the proxy has not seen: each resource of a group is asked for it
 * in turn, and the first that has it wins. The outcome says only what the lookups showed: `absent` when every
 * resource answered 404; `unsure` when one failed or refused (down, a 5xx, a timeout, a 403 for a key scoped to
 * model calls), since the object may be there all the same. The files routes (`objects.ts`) and file routing of
 * generation requests (`file_route.ts`) search this way; each decides what `absent` and `unsure` mean for it.
 */

import type { EndpointConfig } from "../config/config.ts";
import type { ObjectAffinity } from "./affinity.ts";

export type Found = EndpointConfig | "absent" | "unsure";

/**
 * The first of `candidates` whose lookup (`look`: the status of `GET` on the object there, `undefined` when the
 * call failed) answered 200, remembered in `objects` with the object's id.
 */
export async function searchHolder(
  objects: ObjectAffinity,
  id: string,
  candidates: readonly EndpointConfig[],
  look: (endpoint: EndpointConfig) => Promise<number | undefined>,
): Promise<Found> {
  let unsure = false;
  for (const endpoint of candidates) {
    const status = await look(endpoint);
    if (status === 200) {
      await objects.rememberFound(id, endpoint.id);
      return endpoint;
    }
    unsure ||= status !== 404;
  }
  return unsure ? "unsure" : "absent";
}
