/**
 * One credential's access token: cached, refreshed before it expires (once under a tenth of its lifetime, at most
 * five minutes, is left), fetched once however many requests wait for it. While a still-valid token is being
 * refreshed, requests keep using it. After a failed fetch, requests fail at once for a short back-off (or as long
 * as the token endpoint's `Retry-After` asks, up to a minute) instead of each asking the token endpoint again. A
 * token an endpoint rejects (401) is dropped, unless it is fresh, so the next request fetches another.
 */

export interface AccessToken {
  readonly value: string;
  /** Epoch ms the token stops being valid. */
  readonly expiresAt: number;
  /** Epoch ms it was obtained (its lifetime runs from here). */
  readonly obtainedAt: number;
}

/** Most time before expiry at which a token is refreshed. */
export const MAX_REFRESH_MARGIN_MS = 5 * 60_000;
/** How long a failed fetch is answered from memory before the token endpoint is asked again. */
export const FAILURE_BACKOFF_MS = 2000;
/** Longest back-off a `Retry-After` from the token endpoint gets. */
export const MAX_BACKOFF_MS = 60_000;
/** A token younger than this is kept when an endpoint rejects it: a fetch at most this often per credential. */
export const MIN_AGE_TO_DROP_MS = 30_000;

/** When a token should be refreshed: a tenth of its lifetime before expiry, at most five minutes before. */
export function refreshAt(token: AccessToken): number {
  const lifetime = token.expiresAt - token.obtainedAt;
  return token.expiresAt - Math.min(lifetime / 10, MAX_REFRESH_MARGIN_MS);
}

export class CachedToken {
  readonly #fetch: () => Promise<AccessToken>;
  readonly #now: () => number;
  #token: AccessToken | undefined;
  #pending: Promise<AccessToken> | undefined;
  #failure: { error: unknown; until: number } | undefined;

  constructor(fetch: () => Promise<AccessToken>, now: () => number) {
    this.#fetch = fetch;
    this.#now = now;
  }

  /** A valid token, from the cache when it can; rejects with the fetch's error when none can be had. */
  async get(): Promise<string> {
    const now = this.#now();
    const token = this.#token;
    if (token && now < token.expiresAt) {
      // Due for refresh but still valid: refresh in the background, serve this one meanwhile.
      if (now >= refreshAt(token) && !this.#backingOff(now)) this.#refresh().catch(() => {});
      return token.value;
    }
    if (this.#backingOff(now)) throw this.#failure!.error;
    return (await this.#refresh()).value;
  }

  /** Whether a token valid now is held (`get` then answers with it at once). */
  holdsValid(): boolean {
    return this.#token !== undefined && this.#now() < this.#token.expiresAt;
  }

  /** An endpoint answered 401 to `value`: unless it is fresh, the token is dropped and the next `get` fetches. */
  reject(value: string): void {
    const token = this.#token;
    if (token?.value === value && this.#now() - token.obtainedAt >= MIN_AGE_TO_DROP_MS) {
      this.#token = undefined;
    }
  }

  #backingOff(now: number): boolean {
    return this.#failure !== undefined && now < this.#failure.until;
  }

  /** Single flight: every caller during a fetch shares it. */
  #refresh(): Promise<AccessToken> {
    this.#pending ??= this.#fetch().then(
      (token) => {
        this.#token = token;
        this.#failure = undefined;
        this.#pending = undefined;
        return token;
      },
      (error) => {
        this.#failure = { error, until: this.#now() + backoffMs(error) };
        this.#pending = undefined;
        throw error;
      },
    );
    return this.#pending;
  }
}

/** The back-off after a failed fetch: 2 s, or the token endpoint's `Retry-After` up to a minute. */
function backoffMs(error: unknown): number {
  const asked = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  return typeof asked === "number"
    ? Math.min(Math.max(asked, FAILURE_BACKOFF_MS), MAX_BACKOFF_MS)
    : FAILURE_BACKOFF_MS;
}
