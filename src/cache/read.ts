/**
 * Reading a cache entry for the lookup stage. On a shared store (Redis) a lookup costs one round trip, hit or miss:
 * a request that may write takes the coalescing lock in the same script as the read when the entry is absent,
 * and the group's endpoint health is read alongside, for the plan to use on a miss. A store that cannot be read is
 * a miss (logged at warn).
 */

import type { GenerationRequest } from "../core/request.ts";
import type { GroupConfig } from "../config/config.ts";
import type { Logger } from "../logger.ts";
import type { EndpointHealth, Store } from "../store/store.ts";
import { lockKey } from "./coalesce.ts";
import type { CacheControl } from "./control.ts";
import { type CachedAnswer, decodeEntry, entryKey } from "./entry.ts";

/** What reading the entry found, and what it started for a miss. */
export interface Found {
  readonly answer: CachedAnswer | null;
  /** The read took the cross-instance lock as well (a shared store that can relay streams, entry absent). */
  readonly locked: boolean;
  /** The read tried the lock: another holder has it, so a leader goes straight to waiting for its entry. */
  readonly triedLock: boolean;
  /** The group's health, read alongside on a shared store. */
  readonly health?: Promise<EndpointHealth[]>;
}

export interface EntryReaderOptions {
  readonly store: Store;
  readonly logger: Logger;
  /** This instance's lock token, and how long a lock it takes lives. */
  readonly token: string;
  readonly lockTtlMs: number;
  /** Undefined when the health is held in this process (the plan reads it at once). */
  readonly readHealth?: (group: GroupConfig) => Promise<EndpointHealth[]> | undefined;
}

export class EntryReader {
  readonly #options: EntryReaderOptions;

  constructor(options: EntryReaderOptions) {
    this.#options = options;
  }

  /** The usable cached answer for `key` (one of the request's kind, JSON or stream), or none; see the module comment. */
  async read(key: string, request: GenerationRequest, control: CacheControl): Promise<Found> {
    const { store, logger, token, lockTtlMs, readHealth } = this.#options;
    const shared = store.kind !== "memory";
    const health = shared ? readHealth?.(request.group) : undefined;
    const lockable = shared && control.write && (!request.stream || store.readRelay !== undefined);
    let text: string | null;
    let locked = false;
    try {
      if (lockable) {
        ({ value: text, locked } = await store.readOrLock(entryKey(key), lockKey(key), token, lockTtlMs));
      } else text = await store.get(entryKey(key));
    } catch (error) {
      logger.warn("cache read failed; treating it as a miss", {
        request_id: request.requestId,
        error: error instanceof Error ? error.message : String(error),
      });
      return { answer: null, locked: false, triedLock: false, health };
    }
    return { answer: usable(text, request), locked, triedLock: lockable && text === null, health };
  }

  /**
   * The same read at once, from a store that holds its values in this process (no lock, no health to read
   * alongside); undefined from any other store.
   */
  readNow(key: string, request: GenerationRequest): Found | undefined {
    const { store } = this.#options;
    if (store.getNow === undefined) return undefined;
    return { answer: usable(store.getNow(entryKey(key)), request), locked: false, triedLock: false };
  }
}

/** The answer in a stored entry, if it is one of the request's kind (JSON or stream). */
function usable(text: string | null, request: GenerationRequest): CachedAnswer | null {
  const answer = text === null ? null : decodeEntry(text);
  return answer && answer.stream === request.stream ? answer : null;
}
