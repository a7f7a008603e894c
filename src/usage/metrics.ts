/**
 * This instance's usage series on `/metrics`, labelled by key name (never the key), model group and endpoint:
 * requests, tokens by kind, cache hits and the tokens they saved, USD, and requests refused by a key's limits.
 * A request adds to one record per (key, group, endpoint), found with one map lookup; the text is written at
 * scrape time. The series of a key no longer known (revoked, or gone from the config) are written one last time,
 * at the first scrape after its last request, then dropped: key churn does not grow `/metrics`. Without scrapes
 * (no Prometheus), they go `RETIRED_MS` after their key was found unknown (checked at most once a `SWEEP_MS`, as
 * requests are counted), so churn does not grow this instance's memory either; a scraper polling more often than
 * that still sees each final count once.
 */

import type { KeyPolicy } from "../keys/policy.ts";

export interface CountedEvent {
  readonly key: string;
  readonly group: string;
  readonly endpoint: string;
}

/** How long the series of a key found unknown (revoked) are kept for a scrape to see their final counts. */
export const RETIRED_MS = 10 * 60_000;
/** The least time between two looks, as requests are counted, for series of keys no longer known. */
export const SWEEP_MS = 60_000;

interface Series {
  readonly key: string;
  /** When its key was first found unknown; undefined while known (or counted since). */
  goneSince?: number;
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

type Refused = { readonly key: string; value: number; goneSince?: number };

export class UsageMetrics {
  readonly #series = new Map<string, Series>();
  /** `llmproxy_key_limited_total` by its labels, with the key they name. */
  readonly #refused = new Map<string, Refused>();
  #known: (key: string) => boolean = () => true;
  #nextSweep = 0;

  /** Which keys are known now (the key registry): the series of the others are retired. */
  follow(known: (key: string) => boolean): void {
    this.#known = known;
  }

  /** Counts one request at `now` (epoch ms), and now and then drops the series of keys long unknown. */
  count(event: CountedEvent, amounts: Readonly<Record<string, number>>, usd: number, now: number): void {
    if (now >= this.#nextSweep) this.#sweep(now);
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
    series.goneSince = undefined;
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
    if (refused) {
      refused.value++;
      refused.goneSince = undefined;
    } else this.#refused.set(id, { key, value: 1 });
  }

  /** How many series this holds (key, group and endpoint; and refusals by key and limit). */
  get size(): number {
    return this.#series.size + this.#refused.size;
  }

  /** The text of every series; then those of keys `known` no longer names are dropped (written this last time). */
  render(known: (key: string) => boolean = this.#known): string {
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

  /** Marks the series of keys now unknown, and drops those unknown for `RETIRED_MS` (no scrape came for them). */
  #sweep(now: number): void {
    this.#nextSweep = now + SWEEP_MS;
    const known = this.#known;
    const retire = <T extends { readonly key: string; goneSince?: number }>(all: Map<string, T>) => {
      for (const [id, entry] of all) {
        if (known(entry.key)) entry.goneSince = undefined;
        else if (entry.goneSince === undefined) entry.goneSince = now;
        else if (now - entry.goneSince >= RETIRED_MS) all.delete(id);
      }
    };
    retire(this.#series);
    retire(this.#refused);
  }
}
