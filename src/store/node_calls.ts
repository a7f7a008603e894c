/**
 * How `FallbackStore` serves each call: on the primary node that holds its target, or on local state while that
 * node is away (see fallback.ts), with the node's owed deletes sent ahead of it.
 */

import type { MemoryStore } from "./memory.ts";
import {
  ALL_NODES,
  isAnswer,
  mayStillRun,
  type Outages,
  StoreWaitError,
  type WaitBound,
  within,
} from "./outages.ts";
import type { OwedDeletes } from "./owed_deletes.ts";
import type { NodeTarget, Store } from "./store.ts";

/** `sent`: served locally, the call also went out to the node and may still run there (it outlived its wait). */
export type Operation<T> = (store: Store, node: string, sent?: boolean) => Promise<T>;

/**
 * What a call does: `read`, only reads (an answer to it does not bring back a node that refused writes);
 * `patienceMs`, a patient read (`getPatiently`).
 */
export interface CallKind {
  readonly read: boolean;
  readonly patienceMs?: number;
}
export const READ: CallKind = { read: true };
export const WRITE: CallKind = { read: false };

/** What is owed to a node for when it answers again (tallies, charges, stream entries). */
export interface Owed {
  readonly size: number;
  pay(node: string, primary: Store): void;
}

export class NodeCalls {
  readonly #primary: Store;
  readonly #local: MemoryStore;
  readonly #outages: Outages;
  readonly #bound: WaitBound;
  readonly #owed: OwedDeletes;
  readonly #payables: readonly Owed[];

  constructor(
    primary: Store,
    local: MemoryStore,
    outages: Outages,
    bound: WaitBound,
    deletes: OwedDeletes,
    payables: readonly Owed[],
  ) {
    this.#primary = primary;
    this.#local = local;
    this.#outages = outages;
    this.#bound = bound;
    this.#owed = deletes;
    this.#payables = payables;
  }

  /** A call to the target's node, or to local state (see fallback.ts). */
  async call<T>(target: NodeTarget, operation: Operation<T>, kind = WRITE): Promise<T> {
    const { read } = kind;
    let { patienceMs } = kind;
    const node = this.#primary.nodeOf?.(target) ?? ALL_NODES;
    if (this.#primary.status() === "degraded") {
      this.#outages.down(ALL_NODES, "status degraded");
      return operation(this.#local, node);
    }
    if (patienceMs === undefined) {
      if (this.#outages.skip(node, read)) return operation(this.#local, node);
    } else if (this.#outages.silentFor(node, patienceMs)) {
      // A patient read waits for a slow node, even one left alone; one silent for longer than it would wait is hung
      // or gone: served locally at once, but for the one call a period that tries it again (with the usual bound).
      if (this.#outages.skip(node, read)) return operation(this.#local, node);
      patienceMs = undefined;
    }
    // The node's owed deletes go first: commands reach a node in the order they are issued, so no lock this call
    // (or a later one) takes can be removed by a delete owed from before.
    if (this.#owed.size > 0) {
      const answered = (pending: Promise<unknown>) => this.#answered(pending, node, patienceMs);
      if (!(await this.#owed.payAhead(node, this.#primary, this.#outages.isDown(node), answered))) {
        return operation(this.#local, node);
      }
    }
    const started = performance.now();
    const pending = operation(this.#primary, node);
    let result: T;
    try {
      result = await this.#bound.wait(pending, started, patienceMs);
    } catch (error) {
      if (!this.#away(node, error)) throw error;
      // Merely slow (a loaded machine), the node is shared again as soon as its late answer arrives (which also
      // raises the bound); dead or hung, the command fails or never answers and the node stays down.
      if (error instanceof StoreWaitError) pending.then(() => this.#back(node, read), () => {});
      return operation(this.#local, node, mayStillRun(error));
    }
    this.#back(node, read);
    return result;
  }

  /** `node` answered a call: it is shared again, and gets what was counted locally while it was away. */
  #back(node: string, read: boolean): void {
    this.#outages.up(node, read);
    for (const owed of this.#payables) {
      if (owed.size > 0 && !this.#outages.isDown(node)) owed.pay(node, this.#primary);
    }
  }

  /** Whether `pending` got an answer (an error reply is one) within the wait bound; else `node` is down. */
  async #answered(pending: Promise<unknown>, node: string, patienceMs?: number): Promise<boolean> {
    try {
      await this.#bound.wait(pending, performance.now(), patienceMs);
    } catch (error) {
      return !this.#away(node, error);
    }
    return true;
  }

  /**
   * What a failed call says of its node: true when it is away (no answer in time, a closed connection, a refusal
   * to keep state), and it is marked down; false when the server answered (wrong type, value too big): Redis is
   * there, only the call failed.
   */
  #away(node: string, error: unknown): boolean {
    if (isAnswer(error, this.#primary)) return false;
    this.#outages.down(node, error instanceof Error ? error.message : String(error));
    return true;
  }

  async onlyShared<T>(key: string, operation: (store: Store) => Promise<T> | undefined): Promise<T> {
    const node = this.#primary.nodeOf?.({ key }) ?? ALL_NODES;
    const pending = this.#primary.status() === "degraded" || this.#outages.skip(node)
      ? undefined
      : operation(this.#primary);
    if (pending === undefined) throw new StoreWaitError(`no shared store for '${key}'`);
    return await within(pending, this.#bound.ms(performance.now()));
  }

  /** A call that spans every node (SCAN-based): not bounded by `waitMs`; served locally only when it fails. */
  async everyNode<T>(operation: (store: Store) => Promise<T>): Promise<T> {
    if (this.#primary.status() === "degraded") return operation(this.#local);
    try {
      return await operation(this.#primary);
    } catch (error) {
      if (isAnswer(error, this.#primary)) throw error;
      return operation(this.#local);
    }
  }
}
