/**
 * What a leader of a flight in this process does about other instances on a shared store, before going upstream:
 * take the coalescing lock, or wait for whoever holds it, which may meanwhile write the entry (JSON) or relay its
 * stream (`relay.ts`). One process needs no lock in the store: its flights already coalesce everything it serves.
 */

import type { Answer } from "../core/answer.ts";
import type { GenerationRequest } from "../core/request.ts";
import type { Store } from "../store/store.ts";
import { lockOrWait, type LockOutcome } from "./coalesce.ts";
import type { Found } from "./read.ts";
import { followRelay } from "./relay_reader.ts";
import type { Lead } from "./ticket.ts";

export interface AcrossOptions {
  readonly store: Store;
  /** This instance's lock token, and how long a lock lives (and a follower waits). */
  readonly token: string;
  readonly lockTtlMs: number;
  /** Most bytes of a stream kept for late joiners (`cache_params.max_entry_bytes`). */
  readonly maxBytes: number;
}

/** The lock outcome; or the answer of another instance's stream, followed live (marked COALESCED). */
export type Across = Exclude<LockOutcome, { kind: "relay" }> | {
  readonly kind: "answer";
  readonly answer: Answer;
};

/**
 * The outcome at once when there is no other instance to ask (a store in this process, a stream on a store that
 * cannot relay) or the read took the lock already; undefined when `acrossInstances` must ask.
 */
export function acrossAtOnce(store: Store, request: GenerationRequest, found: Found): Across | undefined {
  // A stream can follow another instance's only through a relay: its entry exists once its stream has ended.
  const shared = store.kind !== "memory" && (!request.stream || store.readRelay !== undefined);
  return !shared || found.locked ? { kind: "lead", locked: found.locked, waited: false } : undefined;
}

/** Takes the lock or waits for the instance holding it; only when `acrossAtOnce` had no outcome. */
export async function acrossInstances(
  key: string,
  request: GenerationRequest,
  found: Found,
  lead: Lead,
  options: AcrossOptions,
): Promise<Across> {
  const { store, token, lockTtlMs: ttlMs } = options;
  const relay = request.stream;
  const lockOptions = { ttlMs, waitMs: ttlMs, token, tried: found.triedLock, relay };
  const outcome = await lockOrWait(store, key, lockOptions, lead.flight.abortSignal);
  if (outcome.kind !== "relay") return outcome;
  const answer = await followRelay(store, key, outcome.id, request, lead, options.maxBytes);
  return answer ? { kind: "answer", answer } : { kind: "lead", locked: false, waited: true };
}
