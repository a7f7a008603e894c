/**
 * Endpoint health as this process last knew it, for a shared store (`FallbackStore.readHealthNow`): a request picks
 * its endpoint from it at once, with no Redis round trip in front of it.
 *
 * How it stays current:
 * - this instance's own writes (a failure, a cooldown, a success after failures) set the state the store answered
 *   with, so the next request here sees them at once;
 * - every write is announced on the store's `health` channel (the endpoint id), and each instance that holds that
 *   endpoint reads its health again: another instance's cooldown is seen one pub/sub message and one read later;
 * - every `REFRESH_MS` the endpoints asked for since the last refresh are read again (a message lost to a
 *   reconnect, or a store that cannot publish), and those not asked for are dropped, so an idle instance reads
 *   nothing and the copy holds only configured endpoints in use. After each (re)connect of the subscription,
 *   everything held is read again at once.
 *
 * A read answers for the moment it was sent: its states are taken only where nothing newer (a write of this
 * instance, a later read) set the endpoint since. The reads go through `FallbackStore`, bounded by its wait:
 * a Redis that hangs or is away delays the copy's refresh, never a request.
 */

import type { EndpointHealth } from "./store.ts";
import { startTimer, type Timer } from "../util/timer.ts";

/** The longest another instance's health write goes unseen here when its announcement was lost. */
export const REFRESH_MS = 1000;

/** The channel health writes are announced on (the store namespaces it). */
export const HEALTH_CHANNEL = "health";

export interface HealthSource {
  /** Reads the store (bounded, falling back to local state); `aside`: for no request (`Store.readHealth`). */
  readonly read: (ids: readonly string[], aside: boolean) => Promise<EndpointHealth[]>;
  readonly publish: (id: string) => void;
  /** Null after each (re)connect; returns the function that stops it. */
  readonly subscribe: (onMessage: (id: string | null) => void) => () => Promise<void>;
}

interface Held {
  readonly state: EndpointHealth;
  /** The order of the event that set it (a write, or the sending of a read). */
  readonly stamp: number;
  /** Asked for by a request since the last refresh. */
  asked: boolean;
}

export class HealthMirror {
  readonly #source: HealthSource;
  readonly #held = new Map<string, Held>();
  /** Ids announced since the last read of them. */
  readonly #announced = new Set<string>();
  #stamp = 0;
  #timer: Timer | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #refreshing = false;
  #closed = false;

  constructor(source: HealthSource) {
    this.#source = source;
  }

  /** The states of `ids` when all are held; else undefined (then `read` them). */
  readNow(ids: readonly string[]): EndpointHealth[] | undefined {
    const states: EndpointHealth[] = new Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const held = this.#held.get(ids[i]);
      if (held === undefined) return undefined;
      held.asked = true;
      states[i] = held.state;
    }
    return states;
  }

  /** Reads the store, and keeps what it answered. */
  async read(ids: readonly string[]): Promise<EndpointHealth[]> {
    this.#start();
    const stamp = ++this.#stamp;
    const states = await this.#source.read(ids, false);
    for (let i = 0; i < ids.length; i++) this.#offer(ids[i], states[i], stamp, true);
    return states;
  }

  /** This instance wrote `state` (what the store answered): held at once, and announced. */
  wrote(id: string, state: EndpointHealth): EndpointHealth {
    this.#start();
    this.#held.set(id, { state, stamp: ++this.#stamp, asked: true });
    this.#source.publish(id);
    return state;
  }

  /** This instance reset the failure count (the store answers nothing): held at once, announced. */
  reset(id: string): void {
    const held = this.#held.get(id);
    if (held !== undefined) this.wrote(id, { ...held.state, failures: 0 });
    else this.#source.publish(id);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = undefined;
    await unsubscribe?.();
  }

  /** The subscription and the refresh, with the first use. */
  #start(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = startTimer(REFRESH_MS, () => this.#refresh(), { repeat: true, ref: false });
    this.#unsubscribe = this.#source.subscribe((id) => {
      if (id === null) {
        for (const held of this.#held.keys()) this.#announced.add(held);
      } else if (this.#held.has(id)) this.#announced.add(id);
      else return;
      // Messages that come together are read together.
      if (this.#announced.size > 0) queueMicrotask(() => this.#readAnnounced());
    });
  }

  #readAnnounced(): void {
    if (this.#announced.size === 0 || this.#closed) return;
    const ids = [...this.#announced];
    this.#announced.clear();
    this.#readBack(ids);
  }

  /** Drops what no request asked for since the last refresh; reads the rest again. */
  #refresh(): void {
    if (this.#refreshing) return; // the last one is still waiting on the store (at most its wait bound)
    const ids: string[] = [];
    for (const [id, held] of this.#held) {
      if (!held.asked) this.#held.delete(id);
      else {
        held.asked = false;
        ids.push(id);
      }
    }
    if (ids.length === 0) return;
    this.#refreshing = true;
    this.#readBack(ids).finally(() => this.#refreshing = false);
  }

  /** Reads `ids` again off any request's path; a read that fails changes nothing (the next refresh tries). */
  async #readBack(ids: readonly string[]): Promise<void> {
    const stamp = ++this.#stamp;
    try {
      const states = await this.#source.read(ids, true);
      for (let i = 0; i < ids.length; i++) this.#offer(ids[i], states[i], stamp, false);
    } catch {
      // logged by the store's fallback; the copy stays as it was
    }
  }

  /** Keeps a read's state unless something newer set the endpoint since the read was sent. */
  #offer(id: string, state: EndpointHealth, stamp: number, asked: boolean): void {
    if (this.#closed) return;
    const held = this.#held.get(id);
    if (held !== undefined && held.stamp > stamp) return;
    this.#held.set(id, { state, stamp, asked: held?.asked || asked });
  }
}
