/**
 * Entra ID tokens for the endpoints that use `params.azure_ad`: one cached token per credential (endpoints sharing
 * a credential share its token), kept across config reloads while the credential is unchanged. A failure comes
 * back as a message for the attempt and one warning line naming the endpoint, the credential kind and why.
 */

import type { AzureAdConfig, EndpointConfig } from "../config/config.ts";
import type { Logger } from "../logger.ts";
import { CachedToken } from "./cached_token.ts";
import { requestToken, TokenError, type TokenRequestDeps } from "./token_request.ts";
import { startTimer } from "../util/timer.ts";
import { isoTime } from "../util/iso_time.ts";

export type TokenResult = { readonly ok: true; readonly token: string } | {
  readonly ok: false;
  readonly message: string;
};

export interface EntraTokensOptions {
  readonly logger: Logger;
  readonly now?: () => number;
  readonly fetch?: typeof fetch;
  readonly readTextFile?: (path: string) => Promise<string>;
  /** Bound on one token request; default 10 s. */
  readonly timeoutMs?: number;
}

export class EntraTokens {
  readonly #tokens = new Map<string, CachedToken>();
  /** The credentials of the live config (map keys), once a reload said so: only those are cached. */
  #live: ReadonlySet<string> | undefined;
  /** The live config's credential objects (one per endpoint), as `keepOnly` last got them. */
  #liveAds: readonly AzureAdConfig[] = [];
  /**
   * The tokens of credentials a reload replaced, by the replaced config's credential objects: requests still
   * running on that config share one token per credential (no fetch per attempt), and the entries go when that
   * config does (nothing running holds it), with the secrets they hold.
   */
  readonly #replaced = new WeakMap<AzureAdConfig, CachedToken>();
  readonly #logger: Logger;
  readonly #deps: TokenRequestDeps;

  constructor(options: EntraTokensOptions) {
    this.#logger = options.logger;
    this.#deps = {
      fetch: options.fetch ?? fetch,
      now: options.now ?? Date.now,
      readTextFile: options.readTextFile ?? Deno.readTextFile,
      timeoutMs: options.timeoutMs ?? 10_000,
    };
  }

  /** The endpoint's bearer token (its `azureAd` must be set). */
  async token(endpoint: EndpointConfig, ad: AzureAdConfig): Promise<TokenResult> {
    // The map key holds the secret only in memory; it is never logged or shown.
    const key = JSON.stringify(ad);
    let cached = this.#tokens.get(key) ?? this.#replaced.get(ad);
    if (!cached) {
      cached = new CachedToken(() => this.#fetch(endpoint, ad), this.#deps.now);
      // A credential a reload replaced, asked for by a request still running on the old config: its token is
      // kept with that config's objects, never among the live ones (nor the secret in its key).
      if (this.#live === undefined || this.#live.has(key)) this.#tokens.set(key, cached);
      else this.#replaced.set(ad, cached);
    }
    try {
      const wait = cached.get();
      // A token at hand comes at once; one being fetched is waited for no longer than the endpoint's timeout.
      return { ok: true, token: await (cached.holdsValid() ? wait : within(wait, endpoint.timeoutMs)) };
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      return { ok: false, message: `Entra ID token unavailable: ${why}` };
    }
  }

  /**
   * Forgets the tokens of credentials no endpoint uses now (a reload replaced or removed them), and the secrets
   * their map keys hold; a credential used again later fetches anew. Requests still running on the replaced
   * config go on with its tokens (`#replaced`).
   */
  keepOnly(used: Iterable<AzureAdConfig>): void {
    const ads = Array.from(used);
    const keys = new Set(ads.map((ad) => JSON.stringify(ad)));
    // The outgoing config's endpoints keep the tokens of their credentials, for their requests still running.
    for (const ad of this.#liveAds) {
      const key = JSON.stringify(ad);
      const cached = keys.has(key) ? undefined : this.#tokens.get(key);
      if (cached) this.#replaced.set(ad, cached);
    }
    this.#live = keys;
    this.#liveAds = ads;
    for (const key of this.#tokens.keys()) if (!keys.has(key)) this.#tokens.delete(key);
  }

  /** The endpoint answered 401 to `token`: the credential's token is dropped unless it is fresh. */
  rejected(ad: AzureAdConfig, token: string): void {
    (this.#tokens.get(JSON.stringify(ad)) ?? this.#replaced.get(ad))?.reject(token);
  }

  async #fetch(endpoint: EndpointConfig, ad: AzureAdConfig) {
    try {
      const token = await requestToken(ad, this.#deps);
      this.#logger.debug("Entra ID token obtained", {
        endpoint: endpoint.id,
        credential: ad.kind,
        expires_at: isoTime(token.expiresAt),
      });
      return token;
    } catch (error) {
      this.#logger.warn("Entra ID token request failed; the endpoint's attempts fail until one is obtained", {
        endpoint: endpoint.id,
        group: endpoint.group,
        credential: ad.kind,
        error: error instanceof Error ? error.message : String(error),
      });
      throw error;
    }
  }
}

/** `wait`, or a failure once `ms` have passed (the fetch goes on, for the requests after). */
function within<T>(wait: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = startTimer(
      ms,
      () => reject(new TokenError(`none within the endpoint's timeout (${ms} ms)`)),
      {
        ref: false,
      },
    );
    wait.then((value) => {
      timer.cancel();
      resolve(value);
    }, (error) => {
      timer.cancel();
      reject(error);
    });
  });
}
