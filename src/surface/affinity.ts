/**
 * Which endpoint holds a file or a batch, and which key owns it: remembered in the shared store when the object is
 * created (or seen in a list), so every instance sends later calls for it to the endpoint that has it and answers
 * them only for its owner. Ids are the provider's own. One store value per id: `OWNER\nENDPOINT`, or `ENDPOINT`
 * for an object with no owner (made when no key was needed, found by an admin's search or list, or remembered
 * before objects had owners). Key names never hold a line break, so the first one splits the two.
 */

import { echoed } from "../errors.ts";
import { readPatiently } from "../store/patient_read.ts";
import type { Store } from "../store/store.ts";

/** How long an object's record is kept after it was made or last used: longer than a batch's completion window. */
export const OBJECT_AFFINITY_TTL_MS = 30 * 24 * 3600 * 1000;

/** Where the records live in the store (`obj:<id>`). */
export const OBJECT_PREFIX = "obj:";

const key = (id: string) => OBJECT_PREFIX + id;

/** Where an object is and whose it is. */
export interface Holder {
  /** The id of the endpoint that holds it. */
  readonly endpoint: string;
  /** The name of the key that created it; null when it has no owner. */
  readonly owner: string | null;
}

export function encodeHolder(holder: Holder): string {
  return holder.owner === null ? holder.endpoint : `${holder.owner}\n${holder.endpoint}`;
}

export function decodeHolder(value: string): Holder {
  const split = value.indexOf("\n");
  return split < 0
    ? { endpoint: value, owner: null }
    : { endpoint: value.slice(split + 1), owner: value.slice(0, split) };
}

export class ObjectAffinity {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  /**
   * Where `id` is and whose it is; null when unknown. No record refuses a client key (404), so a slow shared store
   * is waited for, and one that cannot tell throws a 503 `store_unavailable` (`readPatiently`), not "no such file".
   */
  async holderOf(id: string): Promise<Holder | null> {
    const value = await readPatiently(this.#store, key(id), `where file or batch '${echoed(id)}' is`);
    return value === null ? null : decodeHolder(value);
  }

  /** Records a new object (or one used again, for another 30 days); awaited: the client's next call must find it. */
  async remember(id: string, holder: Holder): Promise<void> {
    await this.#store.set(key(id), encodeHolder(holder), OBJECT_AFFINITY_TTL_MS);
  }

  /** Records an object seen on an endpoint with no owner, unless it is known already (keeps its owner). */
  async rememberFound(id: string, endpoint: string): Promise<void> {
    await this.#store.setIfAbsent(key(id), endpoint, OBJECT_AFFINITY_TTL_MS);
  }

  async forget(id: string): Promise<void> {
    await this.#store.delete(key(id));
  }
}
