/**
 * Which key created each Responses object: a response (its `GET`, `input_items`, `cancel`, `DELETE`, and its use as
 * `previous_response_id`) belongs to the key that created it, and any other caller is answered as if it did not
 * exist. Kept in the store next to the affinity (`owner:<response id>`, same TTL); the first key to produce an id
 * owns it (a shared cache hit replays another key's id without taking it over). Responses created with no key
 * have no owner and stay open to every caller.
 */

import type { Identity } from "../core/request.ts";
import type { Store } from "../store/store.ts";

export class ResponseOwners {
  readonly #store: Store;
  readonly #ttlMs: number;

  constructor(store: Store, ttlSeconds: number) {
    this.#store = store;
    this.#ttlMs = ttlSeconds * 1000;
  }

  /** Records `caller` as the owner of `responseId` unless someone already is. */
  async claim(responseId: string, caller: Identity | null): Promise<void> {
    if (!caller) return;
    await this.#store.setIfAbsent(`owner:${responseId}`, caller.id, this.#ttlMs);
  }

  /** Whether `caller` may see and continue `responseId`; a store that cannot say lets it (logged upstream). */
  async allows(responseId: string, caller: Identity | null): Promise<boolean> {
    const owner = await this.#store.get(`owner:${responseId}`).catch(() => null);
    return owner === null || owner === caller?.id;
  }

  async forget(responseId: string): Promise<void> {
    await this.#store.delete(`owner:${responseId}`);
  }
}
