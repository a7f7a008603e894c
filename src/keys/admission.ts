/**
 * The per-key admission rule: names the caller by its key (the auth middleware already refused unknown and expired
 * keys) and starts the key's limit checks without waiting for them, so their store call goes out with the
 * request's first store lookup; the pipeline waits for them before it serves anything (`Identity.pending`).
 * `KeyIdentity` carries the key's policy to the later stages: its private cache scope, the usage record and the
 * end of the request (a place among `max_parallel` given back).
 */

import type { Identity, IncomingRequest } from "../core/request.ts";
import type { AdmissionRule, AdmissionVerdict } from "../proxy/admission.ts";
import { estimateTokens } from "../ratelimit/budget.ts";
import type { UsageMetrics } from "../usage/metrics.ts";
import type { Admission, KeyLimits, Spent } from "./limits.ts";
import { KeyLimitError } from "./limits.ts";
import type { KeyPolicy } from "./policy.ts";
import type { KeyRegistry } from "./registry.ts";

export class KeyIdentity implements Identity {
  readonly id: string;
  readonly owner: string;
  readonly policy: KeyPolicy;
  readonly cacheScope?: string;
  readonly pending?: Promise<Readonly<Record<string, string>>>;
  readonly #admission: Promise<Admission> | undefined;
  readonly #limits: KeyLimits;
  #finished = false;
  #settled = false;
  /** What the request spent, held for `finish` to charge with the release of its place (one store call). */
  #spent: Spent | undefined;

  /**
   * `ownEntries`: cache entries of its own for this request (a `private` key, or a stateful Responses request).
   * `session`: a realtime session, charged as each of its responses ends, long after it was admitted.
   */
  constructor(
    policy: KeyPolicy,
    limits: KeyLimits,
    ownEntries: boolean,
    admission?: Promise<Admission>,
    readonly session = false,
  ) {
    this.id = policy.id;
    this.owner = policy.name;
    this.policy = policy;
    this.#limits = limits;
    if (policy.cache === "private" || ownEntries) this.cacheScope = `key:${policy.name}`;
    this.#admission = admission;
    if (admission) {
      this.pending = admission.then((admitted) => admitted.headers);
      // Handled here at once: a refusal may arrive before the pipeline gets to waiting for it.
      this.pending.catch(() => {});
    }
  }

  /**
   * Charges what the request used to the key's budgets (after its answer); a session's (`keys/session.ts`) to the
   * windows of the moment each of its responses ends.
   */
  settle(spent: Spent): void {
    this.#settled = true;
    // A request that holds a place among `max_parallel` gives it back right after (its answer's end): charged then,
    // in the same store call. Only the first: a second settlement (none is known) goes out on its own.
    const held = !this.session && !this.#finished && this.policy.maxParallel !== undefined;
    if (held && this.#admission && this.#spent === undefined) {
      this.#spent = spent;
      return;
    }
    const now = this.session;
    this.#admission?.then((admitted) => this.#limits.settle(admitted, spent, now), () => {});
  }

  /** The request failed with no answer (nothing was settled): its token estimate is given back to `tpm`. */
  unused(): void {
    if (!this.#settled) this.settle(NOTHING);
  }

  readonly finish = (): void => {
    if (this.#finished) return;
    this.#finished = true;
    const spent = this.#spent;
    this.#spent = undefined;
    this.#admission?.then((admitted) => this.#limits.finish(admitted, spent), () => {});
  };
}

export interface KeyAdmissionOptions {
  readonly registry: KeyRegistry;
  readonly limits: KeyLimits;
  readonly metrics: UsageMetrics;
}

const ADMIT: AdmissionVerdict = { admit: true };
const NOTHING: Spent = { tokens: 0, usd: 0 };

export function keyAdmission(options: KeyAdmissionOptions): AdmissionRule {
  const { registry, limits, metrics } = options;
  return (request: IncomingRequest): AdmissionVerdict => {
    const policy = registry.identify(request.clientHeaders);
    if (!policy) return ADMIT;
    // Calls on what a charged request made (`/responses/{id}`, a file or batch by id, lists) are not charged;
    // the routes that make something upstream (uploads, audio, images, moderations, a batch) are, like generation.
    const charged = request.kind === "generation" ||
      (request.kind === "relay" && (request.target.kind === "group" || request.creates === true));
    if (!charged) return { admit: true, identity: new KeyIdentity(policy, limits, false) };
    // A Responses answer is an object the key owns (its id): never handed to another key from the cache.
    const own = request.kind === "generation" && request.route === "responses";
    if (!policy.limited) return { admit: true, identity: new KeyIdentity(policy, limits, own) };
    const tokens = policy.tpm !== undefined && request.kind === "generation"
      ? estimateTokens(request.route, request.body)
      : 0;
    const admission = limits.admit(policy, tokens);
    admission.catch((error) => {
      if (error instanceof KeyLimitError) metrics.refused(policy.id, error.limit);
    });
    return { admit: true, identity: new KeyIdentity(policy, limits, own, admission) };
  };
}
