/**
 * Which endpoint owns a response (for `previous_response_id`), which produced an encrypted reasoning blob, and the
 * turns of each conversation (for failover replay), all in the shared store with `response_affinity_ttl`.
 */

import { echoed } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { readPatiently } from "../store/patient_read.ts";
import type { Store } from "../store/store.ts";
import type { Turn } from "./conversation.ts";

/** Where the turns live in the store (`turn:<response id>`). */
export const TURN_PREFIX = "turn:";
/** Where each response's endpoint lives (`aff:<response id>`). */
export const AFFINITY_PREFIX = "aff:";
/** Where each encrypted reasoning blob's endpoint lives (`enc:<hash of the blob>`). */
export const BLOB_PREFIX = "enc:";
/**
 * Where the ids of each response's earlier turns live (`anc:<response id>`: a JSON list, the previous one first),
 * so a replay reads a whole chain in two round trips instead of one per turn.
 */
export const ANCESTORS_PREFIX = "anc:";

/** Longest chain of turns rebuilt for a replay. */
export const MAX_TURNS = 256;

/** The store key of a reasoning blob (several KB each: hashed natively, off the event loop). */
async function blobKey(blob: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(blob)));
  return `${BLOB_PREFIX}${
    Array.from(digest.subarray(0, 20), (byte) => byte.toString(16).padStart(2, "0")).join("")
  }`;
}

export class ResponseAffinity {
  readonly #store: Store;
  readonly #ttlMs: number;
  readonly #maxTurnBytes: number;
  readonly #logger: Logger;

  constructor(store: Store, options: { ttlSeconds: number; maxTurnBytes: number; logger: Logger }) {
    this.#store = store;
    this.#ttlMs = options.ttlSeconds * 1000;
    this.#maxTurnBytes = options.maxTurnBytes;
    this.#logger = options.logger;
  }

  /**
   * The endpoint that produced `responseId`; null when unknown. `patient` (where a wrong guess is the client's
   * error: more than one endpoint to choose from, or an item call): a slow store is waited for, and one that cannot
   * tell throws a 503 `store_unavailable` (`readPatiently`). Otherwise null also when the store cannot say (logged).
   */
  ownerOf(responseId: string, patient = true): Promise<string | null> {
    const key = `${AFFINITY_PREFIX}${responseId}`;
    return patient
      ? readPatiently(this.#store, key, `which endpoint holds response '${echoed(responseId)}'`)
      : this.#read(key);
  }

  /** Distinct owners of the given blobs (unknown blobs are left out); `patient` as for `ownerOf`. */
  async ownersOfBlobs(blobs: readonly string[], patient = true): Promise<string[]> {
    const read = (key: string) =>
      patient
        ? readPatiently(this.#store, key, "which endpoint produced these reasoning items")
        : this.#read(key);
    const owners = await Promise.all(blobs.map(async (blob) => read(await blobKey(blob))));
    return [...new Set(owners.filter((owner): owner is string => owner !== null))];
  }

  async #read(key: string): Promise<string | null> {
    try {
      return await this.#store.get(key);
    } catch (error) {
      this.#logger.warn("could not read Responses affinity; routing by weight", { error });
      return null;
    }
  }

  /**
   * The ids of the turns before `responseId`, the previous one first (at most `MAX_TURNS - 1`); null when not held
   * (a first turn, one recorded before ids were kept, or a store that cannot say now: the chain is then read
   * one link at a time from there).
   */
  async ancestorsOf(responseId: string): Promise<string[] | null> {
    try {
      const text = await this.#store.get(`${ANCESTORS_PREFIX}${responseId}`);
      const ids: unknown = text === null ? null : JSON.parse(text);
      return Array.isArray(ids) && ids.every((id) => typeof id === "string") ? ids : null;
    } catch {
      return null;
    }
  }

  /** Maps a new response id to its endpoint (awaited: the client's next turn must find it). */
  async remember(responseId: string, endpoint: string): Promise<void> {
    await this.#store.set(`${AFFINITY_PREFIX}${responseId}`, endpoint, this.#ttlMs);
  }

  /**
   * Keeps a finished turn and maps its reasoning blobs; too large turns are skipped with a warning. `earlier`: the
   * ids of the turns before it, the previous one first (kept with it when there are any).
   */
  async record(
    responseId: string,
    turn: Turn,
    blobs: readonly string[],
    earlier?: readonly string[],
  ): Promise<void> {
    const writes: Promise<void>[] = [this.remember(responseId, turn.endpoint)];
    const text = JSON.stringify(turn);
    if (text.length <= this.#maxTurnBytes) {
      writes.push(this.#store.set(`${TURN_PREFIX}${responseId}`, text, this.#ttlMs));
      if (earlier !== undefined && earlier.length > 0) {
        const ids = JSON.stringify(earlier.slice(0, MAX_TURNS - 1));
        writes.push(this.#store.set(`${ANCESTORS_PREFIX}${responseId}`, ids, this.#ttlMs));
      }
    } else {
      this.#logger.warn("conversation turn too large to keep for failover", {
        response_id: responseId,
        bytes: text.length,
        limit: this.#maxTurnBytes,
      });
    }
    for (const blob of blobs) {
      writes.push(blobKey(blob).then((key) => this.#store.set(key, turn.endpoint, this.#ttlMs)));
    }
    await Promise.all(writes);
  }

  /**
   * The turns ending with `responseId`, oldest first; null when any link of the chain is not held. Read patiently
   * (a replay that leaves out turns the store could not give in time would be a different conversation): a store
   * that cannot tell throws a 503 `store_unavailable`, not the 409 of a conversation this proxy does not hold.
   * The turns whose ids are known (kept with the latest one, `anc:`) are read together: one round trip per Redis
   * node (auto-pipelined) for a chain of up to `MAX_TURNS`, where it took one per turn; from a turn whose earlier
   * ids are not kept, one link at a time.
   */
  async turns(responseId: string): Promise<Turn[] | null> {
    const turns: Turn[] = [];
    const what = `the earlier turns of response '${echoed(responseId)}'`;
    let batch: readonly string[] = [responseId];
    while (turns.length < MAX_TURNS) {
      batch = batch.slice(0, MAX_TURNS - turns.length);
      const [texts, earlier] = await Promise.all([
        Promise.all(batch.map((id) => readPatiently(this.#store, `${TURN_PREFIX}${id}`, what))),
        this.ancestorsOf(batch[batch.length - 1]),
      ]);
      let next: string | undefined;
      let read = 0;
      while (read < texts.length) {
        const text = texts[read++];
        if (text === null) return null;
        const turn = JSON.parse(text) as Turn;
        turns.push(turn);
        next = turn.previous;
        // Ids that do not follow the links (a record rewritten meanwhile): the links decide.
        if (next !== batch[read]) break;
      }
      if (next === undefined) return turns.reverse();
      // The ids before the last turn read, when they are its own and go on from its link.
      const onward = read === batch.length && earlier !== null && earlier[0] === next;
      batch = onward ? earlier : [next];
    }
    return null;
  }

  /** Forgets a deleted response. */
  async forget(responseId: string): Promise<void> {
    await Promise.all([
      this.#store.delete(`${AFFINITY_PREFIX}${responseId}`),
      this.#store.delete(`${TURN_PREFIX}${responseId}`),
      this.#store.delete(`${ANCESTORS_PREFIX}${responseId}`),
    ]);
  }
}
