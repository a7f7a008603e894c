/**
 * Which key created each Responses object: a response (its `GET`, `input_items`, `cancel`, `DELETE`, and its use as
 * `previous_response_id`) belongs to the key that created it, and any other caller is answered as if it did not
 * exist. Kept in the store next to the affinity (`owner:<response id>`, same TTL); the first key to produce an id
 * owns it (a shared cache hit replays another key's id without taking it over). Responses created with no key
 * have no owner and stay open to callers without a key.
 *
 * A key reaches only ids recorded as its own: an id with no owner on record (expired, pushed out of a bounded
 * memory, created before keys were configured or never through this proxy) is unknown to every key. So a missing
 * record never opens a response to every key; and one the store cannot read now is a 503 `store_unavailable`.
 */

import type { Identity } from "../core/request.ts";
import { echoed } from "../errors.ts";
import { readPatiently } from "../store/patient_read.ts";
import type { Store } from "../store/store.ts";

/** Where the owners live in the store (`owner:<response id>`). */
export const OWNER_PREFIX = "owner:";

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
    await this.#store.setIfAbsent(OWNER_PREFIX + responseId, caller.owner ?? caller.id, this.#ttlMs);
  }

  /**
   * Whether `caller` may see and continue `responseId`: a key, only its own; no key, only those no key owns (or
   * any, when the store cannot say: nothing a key owns is at stake for a proxy without keys). For a key, no record
   * refuses it, so a slow store is waited for, and one that cannot tell is a 503 (`readPatiently`), not "not yours".
   */
  async allows(responseId: string, caller: Identity | null): Promise<boolean> {
    const key = OWNER_PREFIX + responseId;
    if (caller) {
      const owner = await readPatiently(this.#store, key, `whose response '${echoed(responseId)}' is`);
      return owner === (caller.owner ?? caller.id);
    }
    return await this.#store.get(key).catch(() => null) === null;
  }

  async forget(responseId: string): Promise<void> {
    await this.#store.delete(OWNER_PREFIX + responseId);
  }
}
