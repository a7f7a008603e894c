/**
 * Endpoint health for `FallbackStore`: every call on the node that holds the endpoint's health (or on local state
 * while that node is away, see fallback.ts), and this process's copy of it (`health_mirror.ts`), fed by what the
 * calls answer and announced to the other instances over the store's pub/sub.
 */

import { HEALTH_CHANNEL, HealthMirror } from "./health_mirror.ts";
import { type NodeCalls, READ } from "./node_calls.ts";
import type { CooldownReason, EndpointHealth, FailureOptions, Store } from "./store.ts";

export class FallbackHealth {
  readonly #calls: NodeCalls;
  readonly #mirror: HealthMirror;

  /** `pubsub`: the fallback store's own `publish` and `subscribe` (nothing is published while Redis is away). */
  constructor(calls: NodeCalls, pubsub: Required<Pick<Store, "publish" | "subscribe">>) {
    this.#calls = calls;
    this.#mirror = new HealthMirror({
      read: (ids, aside) => this.#read(ids, aside),
      publish: (id) => void pubsub.publish(HEALTH_CHANNEL, id).catch(() => {}),
      subscribe: (onMessage) => pubsub.subscribe(HEALTH_CHANNEL, onMessage),
    });
  }

  /** Read from the store (and kept in the copy). */
  read(ids: readonly string[]): Promise<EndpointHealth[]> {
    return this.#mirror.read(ids);
  }

  /** The copy: this instance's own writes at once, other instances' within `REFRESH_MS`. */
  readNow(ids: readonly string[]): EndpointHealth[] | undefined {
    return this.#mirror.readNow(ids);
  }

  recordFailure(id: string, options: FailureOptions): Promise<EndpointHealth> {
    return this.#calls.call({ health: id }, (store) => store.recordFailure(id, options))
      .then((state) => this.#mirror.wrote(id, state));
  }

  recordSuccess(id: string): Promise<void> {
    return this.#calls.call({ health: id }, (store) => store.recordSuccess(id)).then(() =>
      this.#mirror.reset(id)
    );
  }

  coolDown(id: string, forMs: number, reason: CooldownReason): Promise<EndpointHealth> {
    return this.#calls.call({ health: id }, (store) => store.coolDown(id, forMs, reason))
      .then((state) => this.#mirror.wrote(id, state));
  }

  close(): Promise<void> {
    return this.#mirror.close();
  }

  /** One call per id, so each endpoint's health falls back with its own node (still one write per node). */
  #read(ids: readonly string[], aside: boolean): Promise<EndpointHealth[]> {
    const read = (id: string, list: readonly string[] = [id]) =>
      this.#calls.call({ health: id }, (store) => store.readHealth(list, aside), READ);
    if (ids.length === 1) return read(ids[0], ids);
    return Promise.all(ids.map((id) => read(id))).then((replies) => replies.map((reply) => reply[0]));
  }
}
