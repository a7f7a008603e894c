/**
 * Configured `rpm` / `tpm` limits as budgets shared by every proxy instance: one fixed 60 s window per endpoint in
 * the store, checked and charged in one atomic step before a request is sent (one round trip on Redis) and
 * corrected from the answer's `usage`. An endpoint whose budget would be exceeded is blocked on this instance until
 * its window ends, so the balancer skips it without asking the store again. Endpoints without `rpm`/`tpm` never
 * touch the store.
 */

import type { EndpointConfig, GroupConfig } from "../config/config.ts";
import type { Logger } from "../logger.ts";
import type { EndpointHealth, Store, WindowCounter } from "../store/store.ts";
import type { Route } from "../core/route.ts";
import { isoTime } from "../util/iso_time.ts";

/** Length of a budget window: `rpm` and `tpm` are per minute. */
export const BUDGET_WINDOW_MS = 60_000;
/** Output tokens assumed when a generation request sets no `max_tokens` / `max_completion_tokens` / `max_output_tokens`. */
export const DEFAULT_OUTPUT_TOKENS = 256;
/** Characters per token in the prompt estimate (OpenAI's rule of thumb for English text). */
export const CHARS_PER_TOKEN = 4;
/**
 * The most tokens one answer's usage may report: past it (a hundred times the largest context window) a figure is
 * no count of tokens, and is ignored rather than spending a budget's window or failing its store (Redis `INCRBY`
 * takes 64-bit integers only).
 */
export const MAX_USAGE_TOKENS = 100_000_000;

/** Epoch ms when the window that contains `now` began. */
export function windowStart(now: number, windowMs: number): number {
  return Math.floor(now / windowMs) * windowMs;
}

/** Epoch ms when the window that contains `now` ends (the next one begins). */
export function windowEnd(now: number, windowMs: number): number {
  return windowStart(now, windowMs) + windowMs;
}

export function hasBudget(endpoint: EndpointConfig): boolean {
  return endpoint.rpm !== undefined || endpoint.tpm !== undefined;
}

/**
 * Tokens a request will cost, before it is sent: the prompt (`messages`, else `input`, plus `instructions`) at
 * one token per 4 characters of its JSON, plus the output limit it asks for (`max_completion_tokens`,
 * `max_tokens`, `max_output_tokens`), else DEFAULT_OUTPUT_TOKENS; embeddings produce no output tokens.
 */
export function estimateTokens(route: Route, body: Readonly<Record<string, unknown>>): number {
  const prompt = body.messages ?? body.input;
  let chars = prompt === undefined ? 0 : typeof prompt === "string" ? prompt.length : jsonLength(prompt);
  if (typeof body.instructions === "string") chars += body.instructions.length;
  const promptTokens = Math.ceil(chars / CHARS_PER_TOKEN);
  if (route === "embeddings") return promptTokens;
  const limit = [body.max_completion_tokens, body.max_tokens, body.max_output_tokens].find(isCount);
  return promptTokens + (limit ?? DEFAULT_OUTPUT_TOKENS);
}

/**
 * Tokens an answer reports it used: `usage.total_tokens`, else the sum of `prompt_tokens`/`input_tokens` and
 * `completion_tokens`/`output_tokens`. Undefined when the answer says nothing usable.
 */
export function usageTokens(answer: unknown): number | undefined {
  if (!isRecord(answer) || !isRecord(answer.usage)) return undefined;
  const usage = answer.usage;
  if (isCount(usage.total_tokens)) return Math.round(usage.total_tokens);
  const input = [usage.prompt_tokens, usage.input_tokens].find(isCount);
  const output = [usage.completion_tokens, usage.output_tokens].find(isCount);
  return input === undefined && output === undefined ? undefined : Math.round((input ?? 0) + (output ?? 0));
}

/** The counters one request charges: a request against `rpm`, its estimated tokens against `tpm`. */
export function budgetCounters(endpoint: EndpointConfig, tokens: number): WindowCounter[] {
  const counters: WindowCounter[] = [];
  if (endpoint.rpm !== undefined) counters.push({ name: "rpm", amount: 1, limit: endpoint.rpm });
  if (endpoint.tpm !== undefined) {
    counters.push({ name: "tpm", amount: Math.max(0, tokens), limit: endpoint.tpm });
  }
  return counters;
}

/** An endpoint's health as the balancer should see it while its budget is spent until `blockedUntil`. */
export function withBudget(health: EndpointHealth, blockedUntil: number): EndpointHealth {
  if (blockedUntil <= health.cooldownUntil) return health;
  return { failures: health.failures, cooldownUntil: blockedUntil, reason: "rate_limit" };
}

/** What one admitted request charged, for the correction once its answer is known. */
export interface Reservation {
  readonly endpoint: EndpointConfig;
  /** Epoch ms start of the window it was charged to. */
  readonly windowStart: number;
  /** Tokens charged against `tpm` (0 when the endpoint has none). */
  readonly tokens: number;
}

export interface BudgetUse {
  /** Epoch ms when the current window ends. */
  readonly windowEndsAt: number;
  readonly rpm?: { readonly used: number; readonly limit: number };
  readonly tpm?: { readonly used: number; readonly limit: number };
}

export interface BudgetOptions {
  readonly now: () => number;
  readonly logger: Logger;
  /** Default BUDGET_WINDOW_MS. */
  readonly windowMs?: number;
}

export class Budgets {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #windowMs: number;
  /** Endpoint id -> epoch ms until which this instance knows its budget is spent. */
  readonly #blocked = new Map<string, number>();

  constructor(store: Store, options: BudgetOptions) {
    this.#store = store;
    this.#now = options.now;
    this.#logger = options.logger;
    this.#windowMs = options.windowMs ?? BUDGET_WINDOW_MS;
  }

  get windowMs(): number {
    return this.#windowMs;
  }

  /** Epoch ms until which the endpoint is out of budget; 0 when it is not (local, no store call). */
  blockedUntil(endpoint: EndpointConfig, now: number): number {
    if (this.#blocked.size === 0) return 0;
    const until = this.#blocked.get(endpoint.id);
    if (until === undefined) return 0;
    if (until > now) return until;
    this.#blocked.delete(endpoint.id);
    return 0;
  }

  /** The token estimate of a request, or 0 (without looking at the body) when no endpoint of its group has `tpm`. */
  estimate(group: GroupConfig, route: Route, body: Readonly<Record<string, unknown>>): number {
    return group.endpoints.some((endpoint) => endpoint.tpm !== undefined) ? estimateTokens(route, body) : 0;
  }

  /**
   * Charges one request and `tokens` to the endpoint's current window. Undefined when that would exceed its
   * budget: nothing is charged and the endpoint is blocked here until the window ends. A store that fails lets
   * the request through (a budget must never be why a request fails).
   */
  async reserve(endpoint: EndpointConfig, tokens: number): Promise<Reservation | undefined> {
    const now = this.#now();
    const start = windowStart(now, this.#windowMs);
    const counters = budgetCounters(endpoint, tokens);
    const charged = endpoint.tpm !== undefined ? Math.max(0, Math.round(tokens)) : 0;
    try {
      const reply = await this.#store.addToWindows(endpoint.id, counters, this.#windowMs, now);
      if (reply.added) return { endpoint, windowStart: start, tokens: charged };
    } catch (error) {
      this.#logger.warn("budget check failed; request let through", {
        endpoint: endpoint.id,
        error: error instanceof Error ? error.message : String(error),
      });
      return { endpoint, windowStart: start, tokens: 0 };
    }
    const until = start + this.#windowMs;
    this.#blocked.set(endpoint.id, until);
    this.#logger.debug("endpoint out of budget", {
      endpoint: endpoint.id,
      group: endpoint.group,
      until: isoTime(until),
    });
    return undefined;
  }

  /** Corrects the tokens charged by `reservation` to `used` (a stream's usage chunk); off the response path. */
  settleTokens(reservation: Reservation | undefined, used: number | undefined): void {
    if (reservation === undefined || reservation.endpoint.tpm === undefined) return;
    if (!isCount(used)) return;
    used = Math.round(used);
    if (used === reservation.tokens) return;
    if (windowStart(this.#now(), this.#windowMs) !== reservation.windowStart) return;
    const correction = [{ name: "tpm", amount: used - reservation.tokens }];
    this.#store.addToWindows(reservation.endpoint.id, correction, this.#windowMs, reservation.windowStart)
      .catch(() => {});
  }

  /** The endpoint's use of its budget in the current window (shared figures); undefined without rpm/tpm. */
  async use(endpoint: EndpointConfig): Promise<BudgetUse | undefined> {
    if (!hasBudget(endpoint)) return undefined;
    const now = this.#now();
    const counters = budgetCounters(endpoint, 0).map(({ name }) => ({ name, amount: 0 }));
    const { totals } = await this.#store.addToWindows(endpoint.id, counters, this.#windowMs, now);
    let i = 0;
    return {
      windowEndsAt: windowEnd(now, this.#windowMs),
      ...(endpoint.rpm !== undefined ? { rpm: { used: totals[i++], limit: endpoint.rpm } } : {}),
      ...(endpoint.tpm !== undefined ? { tpm: { used: totals[i++], limit: endpoint.tpm } } : {}),
    };
  }
}

/** A usage figure that can be counted: a number from 0 to MAX_USAGE_TOKENS (fractions are rounded where used). */
export function isCount(value: unknown): value is number {
  return typeof value === "number" && value >= 0 && value <= MAX_USAGE_TOKENS;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function jsonLength(value: unknown): number {
  try {
    return JSON.stringify(value)?.length ?? 0;
  } catch {
    return 0;
  }
}
