/**
 * A key's limits over the shared store: `rpm` and `tpm` per UTC minute, `max_parallel` requests in flight,
 * `tokens_per_day`, `tokens_per_month` and `usd_per_month`. One `Store.charge` per request checks them all and
 * charges the request (1 against rpm, its token estimate against tpm, a place among the parallel ones) in one
 * atomic step: exact across instances, and on Redis it goes out in the same write as the request's other store
 * reads when it is started in the same tick. Budgets are charged after the answer with the tokens and USD it
 * used, so a budget stops a key once the reported usage reaches it; with a place among `max_parallel`, in the same
 * store call as its release (`finish`). Keys without limits never touch the store.
 */

import { ProxyError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { Counter, Store } from "../store/store.ts";
import type { KeyPolicy } from "./policy.ts";
import { dayWindow, formatDuration, minuteWindow, monthWindow, type Window } from "./windows.ts";

/** What admitted a request, for its answer's headers and the charges after it. */
export interface Admission {
  readonly policy: KeyPolicy;
  /** The key's `x-ratelimit-*` headers (empty without rpm and tpm). */
  readonly headers: Readonly<Record<string, string>>;
  /** Epoch ms of the admission. */
  readonly at: number;
  /** Tokens charged against tpm before the call. */
  readonly estimate: number;
  /** The place taken among `max_parallel`, given back by `finish`. */
  readonly lease?: string;
}

/** What a finished request used. */
export interface Spent {
  readonly tokens: number;
  readonly usd: number;
  /** A success that reported no usage: what it used is not known, so its `tpm` estimate stands. */
  readonly unreported?: boolean;
}

export interface KeyLimitsOptions {
  readonly now: () => number;
  readonly logger: Logger;
  /** How long a place among `max_parallel` is held at most if never given back (an instance that died). */
  readonly leaseMs: number;
}

type Limit = "rpm" | "tpm" | "max_parallel" | "tokens_per_day" | "tokens_per_month" | "usd_per_month";

interface Check {
  readonly limit: Limit;
  readonly counter: Counter;
  readonly window: Window;
}

const WHAT: Readonly<Record<Limit, string>> = {
  rpm: "requests per minute",
  tpm: "tokens per minute",
  max_parallel: "parallel requests",
  tokens_per_day: "tokens per day",
  tokens_per_month: "tokens per month",
  usd_per_month: "USD per month",
};

/** The scope of a key's counters in the store (the hash tag on Redis). */
export const keyScope = (policy: KeyPolicy) => `key:${policy.name}`;

/** USD are counted in millionths, as integers. */
export const MICRO = 1_000_000;

export class KeyLimits {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #leaseMs: number;

  constructor(store: Store, options: KeyLimitsOptions) {
    this.#store = store;
    this.#now = options.now;
    this.#logger = options.logger;
    this.#leaseMs = options.leaseMs;
  }

  /**
   * Checks and charges one request of `policy` estimated at `tokens`. The store call is issued before this
   * returns. Rejects with a 429 naming the limit; a store that fails lets the request through (logged). A place
   * among `max_parallel` lapses by itself after `leaseMs` (default: the longest a request can take).
   */
  async admit(policy: KeyPolicy, tokens: number, leaseMs = this.#leaseMs): Promise<Admission> {
    const now = this.#now();
    if (!policy.limited) return { policy, headers: {}, at: now, estimate: 0 };
    const checks = this.#checks(policy, now, tokens);
    const lease = policy.maxParallel !== undefined ? crypto.randomUUID() : undefined;
    const pending = this.#store.charge(
      keyScope(policy),
      checks.map((check) => check.counter),
      lease
        ? { name: "parallel", token: lease, limit: policy.maxParallel!, now, until: now + leaseMs }
        : undefined,
    );
    let reply;
    try {
      reply = await pending;
    } catch (error) {
      this.#logger.warn("key limits could not be checked; request let through", {
        key: policy.name,
        error: error instanceof Error ? error.message : String(error),
      });
      return { policy, headers: {}, at: now, estimate: 0 };
    }
    const headers = rateLimitHeaders(policy, checks, reply.totals, now);
    if (!reply.admitted) throw refusal(policy, checks[reply.refused], headers, now);
    return {
      policy,
      headers,
      at: now,
      estimate: policy.tpm !== undefined ? Math.max(0, Math.round(tokens)) : 0,
      lease,
    };
  }

  /**
   * Charges what the request used to the key's tpm (the estimate corrected) and budgets; off the response path.
   * `now`: to the windows of this moment instead of the admission's (a realtime session's responses, spent minutes
   * after it opened; such an admission estimates no tokens, so there is nothing to correct).
   */
  settle(admission: Admission, spent: Spent, now = false): void {
    const counters = this.#settlement(admission, spent, now);
    if (counters.length === 0) return;
    this.#store.charge(keyScope(admission.policy), counters).catch((error) =>
      this.#unsettled(admission, error)
    );
  }

  /**
   * Gives back the request's place among `max_parallel`; with `spent`, charges it (`settle`) in the same store call
   * (one command on Redis instead of two).
   */
  finish(admission: Admission, spent?: Spent): void {
    if (admission.lease === undefined) {
      if (spent) this.settle(admission, spent);
      return;
    }
    const counters = spent ? this.#settlement(admission, spent, false) : [];
    this.#store.release(keyScope(admission.policy), "parallel", admission.lease, counters).catch((error) => {
      if (counters.length > 0) this.#unsettled(admission, error);
    });
  }

  /** The counters `settle` charges: the tpm estimate corrected, and the budgets. */
  #settlement(admission: Admission, spent: Spent, now: boolean): Counter[] {
    const { policy } = admission;
    const counters: Counter[] = [];
    const at = now ? this.#now() : admission.at;
    const minute = minuteWindow(at);
    if (policy.tpm !== undefined && !spent.unreported && spent.tokens !== admission.estimate) {
      counters.push({
        name: `tpm:${minute.label}`,
        amount: spent.tokens - admission.estimate,
        ttlMs: ttl(minute, at),
      });
    }
    const day = dayWindow(at);
    const month = monthWindow(at);
    if (policy.tokensPerDay !== undefined && spent.tokens > 0) {
      counters.push({ name: `tokens:${day.label}`, amount: spent.tokens, ttlMs: ttl(day, at) });
    }
    if (policy.tokensPerMonth !== undefined && spent.tokens > 0) {
      counters.push({ name: `tokens:${month.label}`, amount: spent.tokens, ttlMs: ttl(month, at) });
    }
    if (policy.usdPerMonth !== undefined && spent.usd > 0) {
      counters.push({
        name: `usd:${month.label}`,
        amount: Math.round(spent.usd * MICRO),
        ttlMs: ttl(month, at),
      });
    }
    return counters;
  }

  #unsettled(admission: Admission, error: unknown): void {
    this.#logger.warn("key usage could not be charged", {
      key: admission.policy.name,
      error: error instanceof Error ? error.message : String(error),
    });
  }

  #checks(policy: KeyPolicy, now: number, tokens: number): Check[] {
    const checks: Check[] = [];
    const add = (limit: Limit, name: string, window: Window, amount: number, max: number | undefined) => {
      if (max !== undefined) {
        checks.push({ limit, window, counter: { name, amount, limit: max, ttlMs: ttl(window, now) } });
      }
    };
    const minute = minuteWindow(now);
    const day = dayWindow(now);
    const month = monthWindow(now);
    add("rpm", `rpm:${minute.label}`, minute, 1, policy.rpm);
    add("tpm", `tpm:${minute.label}`, minute, Math.max(0, Math.round(tokens)), policy.tpm);
    add("tokens_per_day", `tokens:${day.label}`, day, 0, policy.tokensPerDay);
    add("tokens_per_month", `tokens:${month.label}`, month, 0, policy.tokensPerMonth);
    const usd = policy.usdPerMonth !== undefined ? Math.round(policy.usdPerMonth * MICRO) : undefined;
    add("usd_per_month", `usd:${month.label}`, month, 0, usd);
    return checks;
  }
}

/** A counter outlives its window by a minute, so late corrections still find it. */
function ttl(window: Window, now: number): number {
  return Math.max(1, window.end - now) + 60_000;
}

/** The key's `x-ratelimit-*` headers: its rpm and tpm, what is left of them after this request, and the reset. */
function rateLimitHeaders(
  policy: KeyPolicy,
  checks: readonly Check[],
  totals: readonly number[],
  now: number,
): Record<string, string> {
  const headers: Record<string, string> = {};
  checks.forEach((check, i) => {
    if (check.limit !== "rpm" && check.limit !== "tpm") return;
    const kind = check.limit === "rpm" ? "requests" : "tokens";
    const limit = check.limit === "rpm" ? policy.rpm! : policy.tpm!;
    headers[`x-ratelimit-limit-${kind}`] = String(limit);
    headers[`x-ratelimit-remaining-${kind}`] = String(Math.max(0, limit - totals[i]));
    headers[`x-ratelimit-reset-${kind}`] = formatDuration(check.window.end - now);
  });
  return headers;
}

/** A request refused by one of a key's limits (`limit` names it, for `/metrics`). */
export class KeyLimitError extends ProxyError {
  readonly limit: string;

  constructor(limit: string, budget: boolean, message: string, headers: Record<string, string>) {
    super(
      429,
      budget ? "insufficient_quota" : "rate_limit_error",
      budget ? "insufficient_quota" : "rate_limit_exceeded",
      message,
      { headers },
    );
    this.limit = limit;
  }
}

function refusal(
  policy: KeyPolicy,
  check: Check | undefined,
  headers: Record<string, string>,
  now: number,
): ProxyError {
  const limit: Limit = check?.limit ?? "max_parallel";
  const retryMs = check ? check.window.end - now : 1000;
  const retryAfter = String(Math.max(1, Math.ceil(retryMs / 1000)));
  const value = limit === "max_parallel"
    ? policy.maxParallel
    : limit === "usd_per_month"
    ? policy.usdPerMonth
    : check!.counter.limit;
  const budget = limit === "tokens_per_day" || limit === "tokens_per_month" || limit === "usd_per_month";
  const message = budget
    ? `Key '${policy.name}' has used its ${limit} budget (${value} ${
      WHAT[limit]
    }); it renews in ${retryAfter}s`
    : `Rate limit reached for key '${policy.name}': ${limit} (${value} ${
      WHAT[limit]
    }); try again in ${retryAfter}s`;
  return new KeyLimitError(limit, budget, message, { ...headers, "retry-after": retryAfter });
}
