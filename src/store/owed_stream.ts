/**
 * Usage stream entries (`appendToStream`, for billing pipelines) that `FallbackStore` could not send while the
 * stream's Redis node was left alone (or Redis disconnected), kept in order and appended once the node answers
 * again: a consumer gets every entry, each with the `time` it was made. While entries are owed, new ones queue
 * behind them, so one instance's entries reach the stream in the order they were made. An append that went out
 * and got no answer within the command timeout is not sent again (a stalled node runs it when it resumes; one that
 * died meanwhile loses it: sending it again could add it twice). Bounded: past `MAX_OWED` entries, new ones are
 * dropped and counted.
 */

import { isAnswer, mayStillRun } from "./outages.ts";
import type { StoreLogger } from "./redis_client.ts";
import type { Store } from "./store.ts";

/** Entries owed at most (~240 bytes each for the proxy's usage entries: see `Owed`). */
const MAX_OWED = 10_000;

interface Entry {
  readonly node: string;
  readonly key: string;
  readonly fields: Readonly<Record<string, string>>;
  readonly maxLen: number;
}

/**
 * An entry as kept: its values in one string and its field names shared with the entry before it when they are the
 * same (a usage entry's fields object takes ~4x the heap). `names` null: `values` is the fields as JSON (a value
 * held the separator).
 */
interface Owed {
  readonly node: string;
  readonly key: string;
  readonly names: readonly string[] | null;
  readonly values: string;
  readonly maxLen: number;
}

const SEPARATOR = "\u0000";

export class OwedStream {
  readonly #log: StoreLogger;
  /** Owed entries, oldest first. */
  #entries: Owed[] = [];
  /** A payment under way: new entries queue behind it. */
  #paying = false;
  #dropped = 0;
  /** The field names of the last entry kept. */
  #names: readonly string[] = [];

  constructor(log: StoreLogger) {
    this.#log = log;
  }

  get size(): number {
    return this.#entries.length;
  }

  /**
   * Appends one entry to `primary` (its node answers, or this call tries it again): at once when nothing is owed;
   * else behind the entries owed, which go first, in order (the first one's answer is this call's). An append
   * that fails without reaching Redis (a refused or closed connection) is owed; the error goes on to the caller.
   */
  append(entry: Entry, primary: Store): Promise<void> {
    // A payment under way: the node was just tried, and this entry goes after those being sent.
    if (this.#paying) return Promise.resolve(this.owe(entry));
    if (this.#entries.length === 0) {
      return primary.appendToStream!(entry.key, entry.fields, entry.maxLen).catch((error) => {
        if (!isAnswer(error, primary) && !mayStillRun(error)) this.owe(entry);
        throw error;
      });
    }
    this.owe(entry);
    return this.#pay(entry.node, primary) ?? Promise.resolve();
  }

  /** Keeps `entry` for when its node answers; past `MAX_OWED`, drops it (one warning per run of drops). */
  owe(entry: Entry): void {
    if (this.#entries.length < MAX_OWED) {
      this.#entries.push(this.#kept(entry));
      return;
    }
    if (this.#dropped++ === 0) {
      this.#log("warn", "usage stream entries dropped: too many kept while Redis is away", {
        kept: MAX_OWED,
      });
    }
  }

  /** Sends the entries owed to `node`, in order, in the background; those that fail are owed again, first. */
  pay(node: string, primary: Store): void {
    this.#pay(node, primary)?.catch(() => {});
  }

  /** `pay`; the first entry's append (undefined: none sent). */
  #pay(node: string, primary: Store): Promise<void> | undefined {
    if (this.#paying || !this.#entries.some((entry) => entry.node === node)) return undefined;
    const sending = this.#entries.filter((entry) => entry.node === node);
    this.#entries = this.#entries.filter((entry) => entry.node !== node);
    this.#paying = true;
    // Issued in one go: commands reach the node in the order they are issued.
    const appends = sending.map((entry) => primary.appendToStream!(entry.key, fieldsOf(entry), entry.maxLen));
    Promise.allSettled(appends).then((results) => {
      this.#paying = false;
      const failed = sending.filter((_entry, i) => {
        const result = results[i];
        return result.status === "rejected" && !isAnswer(result.reason, primary) &&
          !mayStillRun(result.reason);
      });
      this.#entries = [...failed, ...this.#entries];
      if (failed.length > 0) return;
      if (this.#dropped > 0) {
        this.#log("info", "usage stream entries kept while Redis was away appended", {
          dropped: this.#dropped,
        });
        this.#dropped = 0;
      }
      // What queued meanwhile goes too.
      this.pay(node, primary);
    });
    return appends[0];
  }

  /** `entry` as kept, its names shared with the last entry kept when they are the same. */
  #kept({ node, key, fields, maxLen }: Entry): Owed {
    const values = Object.values(fields);
    if (values.some((value) => value.includes(SEPARATOR))) {
      return { node, key, names: null, values: JSON.stringify(fields), maxLen };
    }
    const names = Object.keys(fields);
    const last = this.#names;
    const same = last.length === names.length && names.every((name, i) => name === last[i]);
    if (!same) this.#names = names;
    return { node, key, names: this.#names, values: values.join(SEPARATOR), maxLen };
  }
}

function fieldsOf({ names, values }: Owed): Record<string, string> {
  if (names === null) return JSON.parse(values);
  const parts = values.split(SEPARATOR);
  return Object.fromEntries(names.map((name, i) => [name, parts[i]]));
}
