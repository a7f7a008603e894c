/**
 * What requests spent, as `FallbackStore` writes it: usage tallies (exactly once: `TallyWrites`), key limit charges
 * (`OwedCharges`) and usage stream entries (`OwedStream`). Each is served like any call (on the primary node that
 * holds it, or locally while that node is away), and what was kept locally alone is owed to the node and sent once
 * it answers again, so no instance's spend stays its own and the stream consumer gets every entry.
 */

import type { ChargeReply, Counter, Lease } from "./counters.ts";
import type { MemoryStore } from "./memory.ts";
import { type NodeCalls, type Owed, READ } from "./node_calls.ts";
import { OwedCharges } from "./owed_charges.ts";
import { OwedStream } from "./owed_stream.ts";
import type { StoreLogger } from "./redis_client.ts";
import { TallyWrites, withOwed } from "./tally_writes.ts";

export class SpentWrites {
  readonly #local: MemoryStore;
  readonly #calls: NodeCalls;
  readonly #tallies = new TallyWrites();
  readonly #charges: OwedCharges;
  readonly #stream: OwedStream;

  constructor(local: MemoryStore, calls: NodeCalls, now: () => number, log: StoreLogger) {
    this.#local = local;
    this.#calls = calls;
    this.#charges = new OwedCharges(now);
    this.#stream = new OwedStream(log);
  }

  /** What is owed to nodes, for `NodeCalls` to send when one answers. */
  get owed(): Owed[] {
    return [this.#tallies, this.#charges, this.#stream];
  }

  /** Admitted locally alone during an outage, its amounts are owed to the primary, and sent once it answers. */
  charge(scope: string, counters: readonly Counter[], lease?: Lease): Promise<ChargeReply> {
    return this.#calls.call({ window: scope }, async (store, node, sent) => {
      const reply = await store.charge(scope, counters, lease);
      if (store === this.#local && !sent && reply.admitted) this.#charges.owe(node, scope, counters);
      return reply;
    });
  }

  /** The counters of a release served locally alone are owed to the primary, as a `charge`'s are. */
  release(scope: string, name: string, token: string, counters?: readonly Counter[]): Promise<void> {
    return this.#calls.call({ window: scope }, async (store, node, sent) => {
      await store.release(scope, name, token, counters);
      if (counters && counters.length > 0 && store === this.#local && !sent) {
        this.#charges.owe(node, scope, counters);
      }
    });
  }

  /**
   * Sent to the primary exactly once (`TallyWrites`): counted locally alone (the node left alone, the primary
   * disconnected), the amounts are owed to it; sent and unanswered, they go again with the next write.
   */
  addToTally(key: string, amounts: Readonly<Record<string, number>>, ttlMs: number): Promise<void> {
    let tried = false;
    return this.#calls.call({ key }, (store, node) => {
      if (store === this.#local) {
        if (!tried) this.#tallies.owe(node, key, amounts, ttlMs);
        return store.addToTally(key, amounts, ttlMs);
      }
      tried = true;
      return this.#tallies.send(node, key, amounts, ttlMs, store);
    });
  }

  /** From the primary, with what it is still owed (not sent when this read went out) added. */
  readTally(key: string): Promise<Record<string, number>> {
    return this.#calls.call({ key }, async (store) => {
      const owed = store === this.#local ? undefined : this.#tallies.of(key);
      const tally = await store.readTally(key);
      return owed === undefined ? tally : withOwed(tally, owed);
    }, READ);
  }

  /**
   * Appended in order (`OwedStream`): owed while the primary is disconnected or the stream's node is left alone,
   * and sent once it answers (an append is the call that tries a node left alone, once a period, like any other).
   */
  appendToStream(key: string, fields: Readonly<Record<string, string>>, maxLen: number): Promise<void> {
    let tried = false;
    return this.#calls.call({ stream: key }, (store, node) => {
      const entry = { node, key, fields, maxLen };
      if (store !== this.#local) {
        tried = true;
        return this.#stream.append(entry, store);
      }
      if (!tried) this.#stream.owe(entry);
      return Promise.resolve();
    });
  }
}
