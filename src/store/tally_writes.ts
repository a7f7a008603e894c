/**
 * Usage tallies (`addToTally`) that `FallbackStore` sends to Redis exactly once, whatever happens to Redis.
 *
 * - Counted on local state alone (the node left alone, or Redis disconnected), the amounts are owed to the node and
 *   sent once it answers again (a read of the tally meanwhile adds them).
 * - Sent, they are a chunk with a sequence number; until Redis answers the write, every later write to that tally
 *   carries the chunk again (`Store.addToTallyOnce`: Redis skips a chunk at or below the highest one it applied for
 *   this process). A write that timed out on a stalled node, or was cut with its connection by a node that died,
 *   is so sent again without counting twice if the first one landed after all.
 *
 * Bounded: amounts owed to one key are summed, at most `MAX_CHUNKS` chunks a key wait for an answer (past that,
 * new amounts are summed until one comes), and at most `MAX_KEYS` keys are owed (past it, what is counted
 * meanwhile stays local).
 */

import type { TallyChunk } from "./counters.ts";
import { isAnswer } from "./outages.ts";
import type { Store } from "./store.ts";

/** Tally keys owed at most (usage writes one a day); past it, what is counted meanwhile stays local. */
const MAX_KEYS = 1000;
/** Chunks of one key sent and not yet answered, at most. */
const MAX_CHUNKS = 32;

interface Owed {
  readonly node: string;
  ttlMs: number;
  /** Counted and never sent. */
  unsent: Map<string, number>;
  /** Sent, with no answer yet (in flight, timed out, or cut with the connection). */
  chunks: TallyChunk[];
  /** Writes of this key under way. */
  inFlight: number;
}

export class TallyWrites {
  /** This process's name at Redis (the field of each tally that holds its highest applied chunk). */
  readonly #writer = crypto.randomUUID();
  #seq = 0;
  /** tally key -> what is owed to it. */
  readonly #keys = new Map<string, Owed>();

  /** Keys with something owed or under way. */
  get size(): number {
    return this.#keys.size;
  }

  /** Counted on local state alone: owed to `node`. */
  owe(node: string, key: string, amounts: Readonly<Record<string, number>>, ttlMs: number): void {
    const owed = this.#owed(node, key, ttlMs);
    if (owed !== undefined) add(owed.unsent, amounts);
  }

  /**
   * Writes `amounts` to `primary`, with what `key` is owed and every chunk of it still unanswered. Settles as the
   * write does; the amounts are kept (owed) whatever happens, until Redis has answered a write that carried them.
   */
  send(node: string, key: string, amounts: Readonly<Record<string, number>>, ttlMs: number, primary: Store) {
    if (primary.addToTallyOnce === undefined) return primary.addToTally(key, amounts, ttlMs);
    const owed = this.#owed(node, key, ttlMs);
    if (owed === undefined) {
      return primary.addToTallyOnce(key, this.#writer, [{ seq: ++this.#seq, amounts }], ttlMs);
    }
    add(owed.unsent, amounts);
    return this.#write(key, owed, primary);
  }

  /** What `key` is owed and was never sent (undefined: nothing), for a read of its tally to add. */
  of(key: string): Record<string, number> | undefined {
    const owed = this.#keys.get(key);
    return owed === undefined || owed.unsent.size === 0 ? undefined : Object.fromEntries(owed.unsent);
  }

  /** Sends, in the background, what `node`'s keys are owed; not a key with a write under way (it carries it). */
  pay(node: string, primary: Store): void {
    for (const [key, owed] of this.#keys) {
      if (owed.node === node && owed.inFlight === 0) this.#write(key, owed, primary).catch(() => {});
    }
  }

  #write(key: string, owed: Owed, primary: Store): Promise<void> {
    if (owed.unsent.size > 0 && owed.chunks.length < MAX_CHUNKS) {
      owed.chunks.push({ seq: ++this.#seq, amounts: Object.fromEntries(owed.unsent) });
      owed.unsent = new Map();
    }
    const chunks = [...owed.chunks];
    owed.inFlight++;
    const pending = primary.addToTallyOnce!(key, this.#writer, chunks, owed.ttlMs);
    pending.then(() => this.#settled(key, owed, chunks, primary), (error) => {
      // An error reply is an answer: the script did not run, and would not on a resend either.
      this.#settled(key, owed, isAnswer(error, primary) ? chunks : [], primary);
    });
    return pending;
  }

  /** A write to `key` ended; `done` are the chunks Redis has answered for. */
  #settled(key: string, owed: Owed, done: readonly TallyChunk[], primary: Store): void {
    owed.inFlight--;
    if (done.length > 0) owed.chunks = owed.chunks.filter((chunk) => !done.includes(chunk));
    if (owed.inFlight > 0) return;
    if (owed.chunks.length === 0 && owed.unsent.size === 0) {
      if (this.#keys.get(key) === owed) this.#keys.delete(key);
    } else if (done.length > 0 && owed.unsent.size > 0) {
      // Amounts held back while the chunks were full: Redis answers again, so they go now.
      this.#write(key, owed, primary).catch(() => {});
    }
  }

  #owed(node: string, key: string, ttlMs: number): Owed | undefined {
    let owed = this.#keys.get(key);
    if (owed === undefined) {
      if (this.#keys.size >= MAX_KEYS) return undefined;
      this.#keys.set(key, owed = { node, ttlMs, unsent: new Map(), chunks: [], inFlight: 0 });
    }
    owed.ttlMs = Math.max(owed.ttlMs, ttlMs);
    return owed;
  }
}

function add(sum: Map<string, number>, amounts: Readonly<Record<string, number>>): void {
  for (const field in amounts) sum.set(field, (sum.get(field) ?? 0) + amounts[field]);
}

/** `tally` with `owed` added to it. */
export function withOwed(
  tally: Record<string, number>,
  owed: Readonly<Record<string, number>>,
): Record<string, number> {
  const sum = { ...tally };
  for (const field in owed) sum[field] = (sum[field] ?? 0) + owed[field];
  return sum;
}
