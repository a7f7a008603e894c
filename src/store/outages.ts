/**
 * Which Redis nodes `FallbackStore` is serving locally for, and until when it leaves each alone. A node is down
 * from a call to it that failed (or outlasted the wait bound) until a call to it succeeds; in between, one call
 * per `retryAfterMs` tries it again (the others go local at once, so a dead node costs one bounded wait per
 * period, not one per request). One warning per node going down, one info line per node coming back.
 */

import type { StoreLogger } from "./redis_client.ts";
import type { Store } from "./store.ts";
import { startTimer } from "../util/timer.ts";

/** The whole primary (its client reports itself disconnected), as opposed to one node of it. */
export const ALL_NODES = "*";

export class Outages {
  readonly #log: StoreLogger;
  readonly #kind: string;
  readonly #retryAfterMs: number;
  readonly #now: () => number;
  /** Node -> when a call may try it again (0: as soon as the primary reports itself up). */
  readonly #down = new Map<string, number>();
  /** Nodes down because they refused a write (out of memory, a demoted master): a read they answer is no sign. */
  readonly #refusing = new Set<string>();
  /** Node -> when it went down (the start of its outage; an answer from it ends that). */
  readonly #since = new Map<string, number>();

  constructor(kind: string, log: StoreLogger, retryAfterMs: number, now: () => number) {
    this.#kind = kind;
    this.#log = log;
    this.#retryAfterMs = retryAfterMs;
    this.#now = now;
  }

  get size(): number {
    return this.#down.size;
  }

  /**
   * True when a call to `node` should go local now; a call told false may be the one that tries it again. A `read`
   * never tries a node that refused a write (its answer would say nothing of writes).
   */
  skip(node: string, read = false): boolean {
    if (this.#down.size === 0) return false;
    const retryAt = this.#down.get(node);
    if (retryAt === undefined) return false;
    if (read && this.#refusing.has(node)) return true;
    const now = this.#now();
    if (retryAt > now) return true;
    // This call tries the node; the others keep going local until it has answered (or for another period).
    this.#down.set(node, now + this.#retryAfterMs);
    return false;
  }

  /** Whether `node` (or the whole primary) is served locally now; unlike `skip`, never makes this call a try. */
  isDown(node: string): boolean {
    return this.#down.size > 0 && (this.#down.has(node) || this.#down.has(ALL_NODES));
  }

  /**
   * Whether `node` has been down for `ms` or longer with no answer from it since: hung or gone, not merely slow (a
   * slow node's late answers bring it back). Never a node that refused writes: it still answers reads.
   */
  silentFor(node: string, ms: number): boolean {
    if (this.#down.size === 0 || this.#refusing.has(node)) return false;
    const since = this.#since.get(node);
    return since !== undefined && this.#now() - since >= ms;
  }

  /** `node` failed a call: serve it locally for `retryAfterMs` (the whole primary: until it reports itself up). */
  down(node: string, reason: string): void {
    const first = !this.#down.has(node);
    const now = this.#now();
    this.#down.set(node, node === ALL_NODES ? 0 : now + this.#retryAfterMs);
    if (REFUSES_WRITES.test(reason)) this.#refusing.add(node);
    if (!first) return;
    this.#since.set(node, now);
    const fields = node === ALL_NODES ? { reason } : { node, reason };
    this.#log("warn", `${this.#kind} store unavailable; serving local state`, fields);
  }

  /**
   * A call to `node` succeeded: it (and the whole primary, if it was marked) is shared again; a `read` only when
   * the node went down for another reason than a refused write (it still answers reads while it refuses writes).
   */
  up(node: string, read = false): void {
    if (this.#down.size === 0) return;
    if (read && this.#refusing.has(node)) return;
    this.#refusing.delete(node);
    this.#since.delete(node);
    this.#since.delete(ALL_NODES);
    const mine = this.#down.delete(node);
    const all = this.#down.delete(ALL_NODES);
    if (mine || all) {
      this.#log(
        "info",
        `${this.#kind} store answers again; using shared state`,
        node === ALL_NODES ? {} : { node },
      );
    }
  }

  /** The nodes served locally now, by name; `ALL_NODES` left out (the primary names itself). */
  nodes(): string[] {
    return [...this.#down.keys()].filter((node) => node !== ALL_NODES);
  }
}

/** A call that got no answer within the wait bound: the node counts as away, like a refused connection. */
export class StoreWaitError extends Error {
  override name = "StoreWaitError";
}

/**
 * Whether a failed call may still run on its node: it went out and outlived a wait (the bound, or the client's
 * command timeout), so a stalled node runs it when it resumes; a refused or closed connection never got it.
 */
export function mayStillRun(error: unknown): boolean {
  return error instanceof StoreWaitError || (error instanceof Error && /\btimed out\b/.test(error.message));
}

/**
 * `promise`, or a `StoreWaitError` after `ms`. A timer that fires late means this process was busy, not that
 * Redis was slow: a reply may sit unread in the socket, so it gets one more turn of the event loop first.
 */
export function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const due = performance.now() + ms;
    let graced = false;
    const expire = () => {
      if (!graced && performance.now() - due > 20) {
        graced = true;
        timer = startTimer(1, expire);
        return;
      }
      reject(new StoreWaitError(`no answer within ${ms} ms`));
    };
    let timer = startTimer(ms, expire);
    promise.then(
      (value) => {
        timer.cancel();
        resolve(value);
      },
      (error) => {
        timer.cancel();
        reject(error);
      },
    );
  });
}

/**
 * How long a store call may wait: `floorMs` (250 ms) while Redis answers fast, as it does on a healthy machine.
 * Where its recent answers were slow (a saturated machine: Redis and this process compete for CPU), twice the
 * slowest recent answer, at most `ceilingMs`, so a slow but working Redis is not mistaken for a lost one. "Recent"
 * halves every 5 s.
 */
export class WaitBound {
  readonly #floorMs: number;
  readonly #ceilingMs: number;
  #slowest = 0;
  #at = 0;

  constructor(floorMs: number, ceilingMs = Math.max(floorMs, 1000)) {
    this.#floorMs = floorMs;
    this.#ceilingMs = ceilingMs;
  }

  /** The bound for a call starting now (`performance.now()` milliseconds). */
  ms(now: number): number {
    if (this.#slowest * 2 <= this.#floorMs) return this.#floorMs;
    return Math.min(this.#ceilingMs, Math.max(this.#floorMs, 2 * this.#decayed(now)));
  }

  /**
   * `pending` bounded for a call that started at `started` (by `atLeastMs` when that is longer). Its answer counts
   * as a recent one whenever it comes: one past the bound too (the call went local), so the next call as slow waits
   * for it instead.
   */
  wait<T>(pending: Promise<T>, started: number, atLeastMs = 0): Promise<T> {
    pending.then(() => {
      const now = performance.now();
      this.answered(now - started, now);
    }, () => {});
    return within(pending, Math.max(atLeastMs, this.ms(started)));
  }

  /** A call answered after `ms`. */
  answered(ms: number, now: number): void {
    if (ms > this.#decayed(now)) {
      this.#slowest = ms;
      this.#at = now;
    }
  }

  #decayed(now: number): number {
    return this.#slowest * 0.5 ** ((now - this.#at) / 5000);
  }
}

/**
 * Replies that say the node cannot serve right now (a demoted master, a loading replica, a failover, or a server
 * out of memory under `noeviction`: it refuses every write, so shared state cannot be kept there).
 */
const UNAVAILABLE = /^(READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|OOM)\b/;
/** Of those, the replies of a node that still answers reads: it stays down until a write succeeds. */
const REFUSES_WRITES = /^(READONLY|OOM)\b/;

/**
 * Errors that are an answer from a reachable server or a bad argument, not a sign that the server is away. The
 * store tells its error replies by type where it can (a minified bundle renames the class the name comes from).
 */
export function isAnswer(error: unknown, store?: Pick<Store, "isReply">): boolean {
  if (!(error instanceof Error)) return false;
  if (store?.isReply?.(error) ?? error.name === "ReplyError") return !UNAVAILABLE.test(error.message);
  return error instanceof RangeError;
}
