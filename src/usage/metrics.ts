/**
 * This instance's usage series on `/metrics`, labelled by key name (never the key), model group and endpoint:
 * requests, tokens by kind, cache hits and the tokens they saved, USD, and requests refused by a key's limits.
 * A request adds to one record per (key, group, endpoint), found with one map lookup; the text is written at
 * scrape time. The series of a key no longer known (revoked, or gone from the config) are written one last time,
 * at the first scrape after its last request, then dropped: key churn does not grow `/metrics`.
 */

import type { KeyPolicy } from "../keys/policy.ts";

export interface CountedEvent {
  readonly key: string;
  readonly group: string;
  readonly endpoint: string;
}

interface Series {
  readonly key: string;
  readonly labels: string;
  readonly keyGroup: string;
  requests: number;
  input: number;
  cached_input: number;
  output: number;
  reasoning: number;
  hits: number;
  saved: number;
  usd: number;
}

const TOKEN_KINDS = ["input", "cached_input", "output", "reasoning"] as const;

/** A key's limits by the name its refusals carry (`keys/limits.ts`). */
const limitsOf = (policy: KeyPolicy): [string, number | undefined][] => [
  ["rpm", policy.rpm],
  ["tpm", policy.tpm],
  ["max_parallel", policy.maxParallel],
  ["tokens_per_day", policy.tokensPerDay],
  ["tokens_per_month", policy.tokensPerMonth],
  ["usd_per_month", policy.usdPerMonth],
];

const label = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

export class UsageMetrics {
  readonly #series = new Map<string, Series>();
  /** `llmproxy_key_limited_total` by its labels, with the key they name. */
  readonly #refused = new Map<string, { readonly key: string; value: number }>();

  count(event: CountedEvent, amounts: Readonly<Record<string, number>>, usd: number): void {
    const id = `${event.key}\t${event.group}\t${event.endpoint}`;
    let series = this.#series.get(id);
    if (!series) {
      const keyGroup = `key="${label(event.key)}",group="${label(event.group)}"`;
      series = {
        key: event.key,
        labels: `${keyGroup},endpoint="${label(event.endpoint)}"`,
        keyGroup,
        requests: 0,
        input: 0,
        cached_input: 0,
        output: 0,
        reasoning: 0,
        hits: 0,
        saved: 0,
        usd: 0,
      };
      this.#series.set(id, series);
    }
    series.requests++;
    if (amounts.cache_hits) {
      series.hits++;
      series.saved += amounts.saved_tokens ?? 0;
      return;
    }
    series.input += amounts.input_tokens ?? 0;
    series.cached_input += amounts.cached_input_tokens ?? 0;
    series.output += amounts.output_tokens ?? 0;
    series.reasoning += amounts.reasoning_tokens ?? 0;
    series.usd += usd;
  }

  /**
   * Zero `llmproxy_key_limited_total` series for each limit the configured keys have, so alerts see them before
   * the first refusal; those of keys (or limits) no longer configured go, unless they counted something.
   */
  known(policies: readonly KeyPolicy[]): void {
    for (const [id, { value }] of this.#refused) if (value === 0) this.#refused.delete(id);
    for (const policy of policies) {
      for (const [limit, value] of limitsOf(policy)) {
        const id = `key="${label(policy.id)}",limit="${limit}"`;
        if (value !== undefined && !this.#refused.has(id)) {
          this.#refused.set(id, { key: policy.id, value: 0 });
        }
      }
    }
  }

  refused(key: string, limit: string): void {
    const id = `key="${label(key)}",limit="${label(limit)}"`;
    const refused = this.#refused.get(id);
    if (refused) refused.value++;
    else this.#refused.set(id, { key, value: 1 });
  }

  /** The text of every series; then those of keys `known` no longer names are dropped (written this last time). */
  render(known: (key: string) => boolean = () => true): string {
    const out: string[] = [];
    const family = (name: string, help: string, lines: string[]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, ...lines);
    };
    const all = [...this.#series.values()];
    family(
      "llmproxy_key_requests_total",
      "Requests answered, per key",
      all.map((s) => `llmproxy_key_requests_total{${s.labels}} ${s.requests}`),
    );
    family(
      "llmproxy_key_tokens_total",
      "Tokens used, per key and kind (input, cached_input, output, reasoning)",
      all.flatMap((s) =>
        TOKEN_KINDS.filter((kind) => s[kind] > 0).map((kind) =>
          `llmproxy_key_tokens_total{${s.labels},kind="${kind}"} ${s[kind]}`
        )
      ),
    );
    const perKeyGroup = (field: "hits" | "saved") => {
      const sums = new Map<string, number>();
      for (const s of all) if (s.hits > 0) sums.set(s.keyGroup, (sums.get(s.keyGroup) ?? 0) + s[field]);
      return [...sums];
    };
    family(
      "llmproxy_key_cache_hits_total",
      "Answers served from the cache, per key",
      perKeyGroup("hits").map(([labels, value]) => `llmproxy_key_cache_hits_total{${labels}} ${value}`),
    );
    family(
      "llmproxy_key_cache_saved_tokens_total",
      "Tokens cache hits saved, per key",
      perKeyGroup("saved").map(([labels, value]) =>
        `llmproxy_key_cache_saved_tokens_total{${labels}} ${value}`
      ),
    );
    family(
      "llmproxy_key_cost_usd_total",
      "USD spent per key, from the prices table",
      all.filter((s) => s.usd > 0).map((s) => `llmproxy_key_cost_usd_total{${s.labels}} ${s.usd}`),
    );
    family(
      "llmproxy_key_limited_total",
      "Requests refused by a key's limit or budget",
      [...this.#refused].map(([labels, { value }]) => `llmproxy_key_limited_total{${labels}} ${value}`),
    );
    for (const [id, series] of this.#series) if (!known(series.key)) this.#series.delete(id);
    for (const [id, refused] of this.#refused) if (!known(refused.key)) this.#refused.delete(id);
    return out.join("\n") + "\n";
  }
}
