/**
 * This instance's usage series on `/metrics`, labelled by key name (never the key), model group and endpoint:
 * requests, tokens by kind, cache hits and the tokens they saved, USD, and requests refused by a key's limits.
 */

import { Counter, Registry } from "../metrics/registry.ts";

export interface CountedEvent {
  readonly key: string;
  readonly group: string;
  readonly endpoint: string;
}

export class UsageMetrics {
  readonly #registry = new Registry();
  readonly #requests = this.#registry.register(
    new Counter("llmproxy_key_requests_total", "Requests answered, per key", ["key", "group", "endpoint"]),
  );
  readonly #tokens = this.#registry.register(
    new Counter(
      "llmproxy_key_tokens_total",
      "Tokens used, per key and kind (input, cached_input, output, reasoning)",
      [
        "key",
        "group",
        "endpoint",
        "kind",
      ],
    ),
  );
  readonly #hits = this.#registry.register(
    new Counter("llmproxy_key_cache_hits_total", "Answers served from the cache, per key", ["key", "group"]),
  );
  readonly #saved = this.#registry.register(
    new Counter("llmproxy_key_cache_saved_tokens_total", "Tokens cache hits saved, per key", [
      "key",
      "group",
    ]),
  );
  readonly #usd = this.#registry.register(
    new Counter("llmproxy_key_cost_usd_total", "USD spent per key, from the prices table", [
      "key",
      "group",
      "endpoint",
    ]),
  );
  readonly #refused = this.#registry.register(
    new Counter("llmproxy_key_limited_total", "Requests refused by a key's limit or budget", [
      "key",
      "limit",
    ]),
  );

  count(event: CountedEvent, amounts: Readonly<Record<string, number>>, usd: number): void {
    const { key, group, endpoint } = event;
    this.#requests.inc([key, group, endpoint]);
    if (amounts.cache_hits) {
      this.#hits.inc([key, group]);
      this.#saved.inc([key, group], amounts.saved_tokens ?? 0);
      return;
    }
    for (const kind of ["input", "cached_input", "output", "reasoning"]) {
      const amount = amounts[`${kind}_tokens`];
      if (amount) this.#tokens.inc([key, group, endpoint, kind], amount);
    }
    if (usd > 0) this.#usd.inc([key, group, endpoint], usd);
  }

  refused(key: string, limit: string): void {
    this.#refused.inc([key, limit]);
  }

  render(): string {
    return this.#registry.render();
  }
}
