/**
 * Coalescing identical requests so only one goes upstream.
 *
 * In this process, a `Flight` is one request in flight that others may follow: its answer is shared when it
 * is a complete 200 (a JSON body as it is; a stream through a `Broadcast`, each follower reading from the
 * first byte at its own pace). When it fails, followers get null and go their own way. The upstream call is
 * aborted only when every request attending the flight has gone.
 *
 * Across instances (a shared store), the leader of a flight holds a short lock in the store (`coalesce:{<key>}`,
 * set-if-absent with a TTL), usually taken by the same script that found the entry absent (`Store.readOrLock`).
 * An instance that finds the lock taken waits for the entry to appear instead of calling the upstream, polling
 * with a bound; when the lock goes away without an entry (the other leader failed) or the bound passes, it goes
 * upstream itself.
 */

import type { Answer, AnswerMeta } from "../core/answer.ts";
import type { Store } from "../store/store.ts";
import type { AbortLike } from "../core/abort_like.ts";
import { CallSignal } from "../upstream/call_signal.ts";
import type { Broadcast } from "./broadcast.ts";
import { type CachedAnswer, entryKey } from "./entry.ts";
import { ASK_AGAIN_MS, CLOSED, pause, PENDING, PENDING_MS, relayPointer } from "./relay.ts";
import { askForRelay } from "./relay_wants.ts";

/** The leader's answer, as followers share it: its headers and metadata, and its body or a broadcast of it. */
export type Shared =
  | {
    readonly kind: "json";
    readonly headers: Readonly<Record<string, string>>;
    readonly meta: AnswerMeta;
    readonly bytes: Uint8Array<ArrayBuffer>;
  }
  | {
    readonly kind: "stream";
    readonly headers: Readonly<Record<string, string>>;
    readonly meta: AnswerMeta;
    readonly broadcast: Broadcast;
  }
  | { readonly kind: "entry"; readonly answer: CachedAnswer };

/**
 * The leader's live answer as a follower's (marked COALESCED); null when it can no longer be shared (a stream
 * past what is kept for late joiners). A stored entry is replayed by the caller instead.
 */
export function followerAnswer(shared: Exclude<Shared, { kind: "entry" }>): Answer | null {
  let body: Answer["body"];
  if (shared.kind === "stream") {
    const stream = shared.broadcast.join();
    if (!stream) return null;
    body = { kind: "stream", stream };
  } else body = { kind: "bytes", bytes: shared.bytes };
  return { status: 200, headers: shared.headers, body, meta: { ...shared.meta, cache: "COALESCED" } };
}

/** What a follower got: the shared answer, null when the leader failed, "gone" when its own client left. */
export type Followed = Shared | null | "gone";

export class Flight {
  /** A plain signal, not an `AbortController`'s: one per miss, and only the upstream call listens to it. */
  readonly #signal = new CallSignal();
  #abortSignal: AbortSignal | undefined;
  /** Made when a follower first waits: most flights have none. */
  #result: Promise<Shared | null> | undefined;
  #resolve: ((shared: Shared | null) => void) | undefined;
  #shared: Shared | null = null;
  #attending = 0;
  #settled = false;

  /** The shared answer, once settled (null: followers go their own way). */
  get result(): Promise<Shared | null> {
    if (this.#result) return this.#result;
    return this.#result = this.#settled
      ? Promise.resolve(this.#shared)
      : new Promise((resolve) => this.#resolve = resolve);
  }

  /** For the upstream call: aborted once every request attending the flight has gone before it settled. */
  get signal(): AbortLike {
    return this.#signal;
  }

  /** The same as an `AbortSignal` (waiting for another instance, following its relay), made on first use. */
  get abortSignal(): AbortSignal {
    return this.#abortSignal ??= this.#signal.abortSignal();
  }

  /**
   * Counts the request of `signal` as attending until the flight settles; returns the function that stops it.
   */
  attend(signal: AbortLike, onGone?: () => void): () => void {
    if (signal.aborted) {
      onGone?.();
      return () => {};
    }
    this.#attending++;
    const gone = () => {
      onGone?.();
      if (--this.#attending === 0 && !this.#settled) {
        this.#signal.abort(new DOMException("Every client of the flight left", "AbortError"));
      }
    };
    // No `{ once: true }` (its options object costs a conversion per call): a signal aborts once, and the
    // returned function removes the listener.
    signal.addEventListener("abort", gone);
    return () => signal.removeEventListener("abort", gone);
  }

  /** Shares the answer (or null: followers go their own way). Only the first call counts. */
  settle(shared: Shared | null): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#shared = shared;
    this.#resolve?.(shared);
  }

  /** Waits, as a follower, for the shared answer, or until the follower's own client leaves. */
  async follow(signal: AbortLike): Promise<Followed> {
    let gone!: () => void;
    const left = new Promise<"gone">((resolve) => gone = () => resolve("gone"));
    const stop = this.attend(signal, gone);
    try {
      return await Promise.race([this.result, left]);
    } finally {
      stop();
    }
  }
}

/** The flights of this process, by cache key. */
export class Flights {
  readonly #flights = new Map<string, Flight>();

  get(key: string): Flight | undefined {
    return this.#flights.get(key);
  }

  /** Registers a new flight for `key`; call only when `get(key)` found none (no await in between). */
  open(key: string): Flight {
    const flight = new Flight();
    this.#flights.set(key, flight);
    return flight;
  }

  /** Forgets `flight` (if it is still the one for `key`). */
  close(key: string, flight: Flight): void {
    if (this.#flights.get(key) === flight) this.#flights.delete(key);
  }

  get size(): number {
    return this.#flights.size;
  }
}

export interface LockOptions {
  /** How long the lock lives if its holder never releases it. */
  readonly ttlMs: number;
  /** How long to wait for another instance's entry before going upstream anyway. */
  readonly waitMs: number;
  /** This holder's token, so a release never removes another holder's lock. */
  readonly token: string;
  /** The lock was just tried (with the entry read) and is held by another: wait for its entry at once. */
  readonly tried?: boolean;
  /** A streamed request: ask the holder to relay its stream (`relay.ts`) and follow that rather than wait. */
  readonly relay?: boolean;
}

/**
 * Leads (with the lock, or without it when the store could not be asked, or the holder's stream cannot be joined),
 * found the entry another made, or found the relay of the stream another instance is leading.
 */
export type LockOutcome =
  | { readonly kind: "lead"; readonly locked: boolean; readonly waited: boolean }
  | { readonly kind: "entry"; readonly text: string }
  | { readonly kind: "relay"; readonly id: string };

/**
 * How long a follower of a stream waits for a holder that says nothing (no relay, not `pending`) after it was asked
 * for its stream: a holder that died before it was asked leaves its lock for up to its TTL (30 s) otherwise.
 */
const UNANSWERED_MS = 2 * PENDING_MS;

/** The coalescing lock's store key: the entry's hash tag (see `entryKey`). */
export const lockKey = (key: string): string => `coalesce:{${key}}`;

/**
 * Takes the cross-instance lock for `key`, or waits (bounded) for the entry whoever holds it will write (or, for a
 * stream, for the relay of its answer).
 */
export async function lockOrWait(
  store: Store,
  key: string,
  options: LockOptions,
  signal: AbortSignal,
): Promise<LockOutcome> {
  const take = () => store.setIfAbsent(lockKey(key), options.token, options.ttlMs);
  let asked = -Infinity;
  const ask = () => {
    if (Date.now() - asked < ASK_AGAIN_MS) return;
    asked = Date.now();
    askForRelay(store, key);
  };
  if (!options.tried) {
    try {
      if (await take()) return { kind: "lead", locked: true, waited: false };
    } catch {
      return { kind: "lead", locked: false, waited: false };
    }
  }
  if (options.relay) ask();
  let pending = false;
  // The last time the holder said something about its stream (or this instance first asked for it).
  let heard = Date.now();
  const deadline = Date.now() + options.waitMs;
  let wait = 10;
  while (!signal.aborted && Date.now() < deadline) {
    await pause(Math.min(wait, deadline - Date.now()), signal);
    wait = Math.min(wait * 2, options.relay ? 50 : 200);
    try {
      const [entry, holder, pointer] = await Promise.all([
        store.get(entryKey(key)),
        store.get(lockKey(key)),
        options.relay ? store.get(relayPointer(key)) : null,
      ]);
      if (entry !== null) return { kind: "entry", text: entry };
      if (pointer === CLOSED) return { kind: "lead", locked: false, waited: true };
      // The holder said it would relay, then went silent before it could: it died before its first byte.
      const other = holder !== null && holder !== options.token;
      if (pointer === null && pending && other) break;
      // Asked, it never said a word: it died before (a live holder answers an ask within a round trip).
      if (options.relay && pointer === null && other && Date.now() - heard > UNANSWERED_MS) break;
      if (pointer !== null) heard = Date.now();
      pending = pointer === PENDING;
      if (pointer !== null && !pending) return { kind: "relay", id: pointer };
      // This instance's own token while it has no other flight for the key (only one leader per key runs
      // here): a lock whose taking timed out after Redis ran it, or whose release failed. Released locks are
      // gone by now (one connection keeps commands in order), so it is this leader's to use, not to wait for.
      if (holder === options.token) return { kind: "lead", locked: true, waited: true };
      if (holder === null && await take()) return { kind: "lead", locked: true, waited: true };
      if (options.relay) ask();
    } catch {
      break;
    }
  }
  return { kind: "lead", locked: false, waited: true };
}

/** Releases the lock if this holder still holds it. Never throws. */
export async function unlock(store: Store, key: string, token: string): Promise<void> {
  try {
    await store.deleteIfEquals(lockKey(key), token);
  } catch {
    // it expires by itself
  }
}
