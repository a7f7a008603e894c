/**
 * How a follower asks the leading instance to relay its stream (`relay.ts`): it publishes the cache key on the
 * store's `relay-want` channel, and the instance that leads that key here starts the relay. A stream nobody asks
 * for costs nothing in Redis. Pub/sub may drop a message (a reconnect), so a follower asks again while it waits.
 * One subscription per store, opened with the first streamed flight this process leads on it, closed with the store.
 */

import type { Store } from "../store/store.ts";

export const WANT_CHANNEL = "relay-want";

class RelayWants {
  readonly #store: Store;
  /** Cache key -> what to do when asked, for the streamed flights this process leads. */
  readonly #offers = new Map<string, () => void>();
  #subscribed = false;

  constructor(store: Store) {
    this.#store = store;
  }

  /** Calls `onWant` when another instance asks for `key`'s stream; returns the function that withdraws it. */
  offer(key: string, onWant: () => void): () => void {
    this.#subscribe();
    this.#offers.set(key, onWant);
    return () => {
      if (this.#offers.get(key) === onWant) this.#offers.delete(key);
    };
  }

  #subscribe(): void {
    if (this.#subscribed || !this.#store.subscribe) return;
    this.#subscribed = true;
    this.#store.subscribe(WANT_CHANNEL, (key) => {
      if (key !== null) this.#offers.get(key)?.();
    });
  }
}

const byStore = new WeakMap<Store, RelayWants>();

/** The offers of this process on `store`. */
export function relayWants(store: Store): RelayWants {
  let wants = byStore.get(store);
  if (!wants) byStore.set(store, wants = new RelayWants(store));
  return wants;
}

/** Asks whichever instance leads `key` to relay its stream; never throws. */
export function askForRelay(store: Store, key: string): void {
  store.publish?.(WANT_CHANNEL, key).catch(() => {});
}
