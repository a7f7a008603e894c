/**
 * Which endpoint holds a file or a batch, and which key owns it: remembered in the shared store when the object is
 * created (or seen in a list), so every instance sends later calls for it to the endpoint that has it and answers
 * them only for its owner. Ids are the provider's own. One store value per id: `OWNER\nENDPOINT`, or `ENDPOINT`
 * for an object with no owner (made when no key was needed, found by an admin's search or list, or remembered
 * before objects had owners). Key names never hold a line break, so the first one splits the two.
 */

import type { Logger } from "../logger.ts";
import type { Store } from "../store/store.ts";

/** How long an object's record is kept after it was made or last used: longer than a batch's completion window. */
export const OBJECT_AFFINITY_TTL_MS = 30 * 24 * 3600 * 1000;

/** How long a read of an object's record waits for a slow Redis before it falls back to local state. */
const PATIENT_READ_MS = 2000;

const key = (id: string) => `obj:${id}`;

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
  readonly #logger: Logger;

  constructor(store: Store, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  /** Where `id` is and whose it is; null when unknown, or when the store cannot say (logged). */
  async holderOf(id: string): Promise<Holder | null> {
    try {
      // No record refuses a client key (404): a slow shared store is waited for, not read as "no such file".
      const value = await (this.#store.getPatiently?.(key(id), PATIENT_READ_MS) ?? this.#store.get(key(id)));
      return value === null ? null : decodeHolder(value);
    } catch (error) {
      this.#logger.warn("could not read file/batch affinity", {
        error: error instanceof Error ? error.message : String(error),
      });
      return null;
    }
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
