/**
 * Which endpoint holds a file or a batch: remembered in the shared store when the object is created (or seen in a
 * list), so every instance sends later calls for it to the endpoint that has it. Ids are the provider's own.
 */

import type { Logger } from "../logger.ts";
import type { Store } from "../store/store.ts";

/** How long an object's endpoint is remembered: longer than a batch's completion window and its files' use. */
export const OBJECT_AFFINITY_TTL_MS = 30 * 24 * 3600 * 1000;

const key = (id: string) => `obj:${id}`;

export class ObjectAffinity {
  readonly #store: Store;
  readonly #logger: Logger;

  constructor(store: Store, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  /** The endpoint id that holds `id`; null when unknown, or when the store cannot say (logged). */
  async ownerOf(id: string): Promise<string | null> {
    try {
      return await this.#store.get(key(id));
    } catch (error) {
      this.#logger.warn("could not read file/batch affinity", {
        error: error instanceof Error ? error.message : String(error),
      });
      return null;
    }
  }

  /** Records the endpoint of a new object; awaited, since the client's next call must find it. */
  async remember(id: string, endpoint: string): Promise<void> {
    await this.#store.set(key(id), endpoint, OBJECT_AFFINITY_TTL_MS);
  }

  async forget(id: string): Promise<void> {
    await this.#store.delete(key(id));
  }
}
