/**
 * Usage and cost per key, model group and endpoint: each finished request adds to the day's tally in the shared
 * store (`usage:YYYY-MM-DD`, one hash; kept 400 days; counts are gathered for up to 500 ms and written together),
 * to this instance's `/metrics` series (labelled by key name, never the key), and, with
 * `general_settings.usage_stream`, to a Redis Stream for billing pipelines. Writes are off the response path and
 * never fail a request. `GET /admin/usage` reads the tallies back per day.
 */

import type { KeysConfig } from "../keys/config.ts";
import type { Logger } from "../logger.ts";
import type { Store } from "../store/store.ts";
import { totalTokens, type UsageFigures } from "./figures.ts";
import { UsageMetrics } from "./metrics.ts";
import { costOf, priceFor } from "./prices.ts";
import { startTimer, type Timer } from "../util/timer.ts";
import { isoDay, isoTime } from "../util/iso_time.ts";

/** One finished request. */
export interface UsageEvent {
  /** The key's name; `anonymous` when the proxy needs no key. */
  readonly key: string;
  readonly group: string;
  /** The endpoint that answered (for a cache hit, the one that produced the entry). */
  readonly endpoint: string;
  /** The endpoint's `model` (for Azure the deployment name), for pricing. */
  readonly endpointModel?: string;
  readonly route: string;
  readonly status: number;
  readonly cacheHit: boolean;
  /** What the answer reported; undefined when it reported nothing. */
  readonly figures?: UsageFigures;
  readonly requestId: string;
}

/** What a request spent (for the key's budgets). */
export interface Spent {
  readonly tokens: number;
  readonly usd: number;
}

export const USAGE_FIELDS = [
  "requests",
  "input_tokens",
  "cached_input_tokens",
  "output_tokens",
  "reasoning_tokens",
  "cache_hits",
  "saved_tokens",
  "usd_micros",
] as const;

export type UsageRow = {
  date: string;
  key: string;
  model_group: string;
  endpoint: string;
  usd: number;
} & Record<Exclude<(typeof USAGE_FIELDS)[number], "usd_micros">, number>;

const KEEP_MS = 400 * 86_400_000;
const SEP = "\t";
/** Counts are gathered here and written to the store at most this often (one write per day's tally). */
const FLUSH_MS = 500;

export interface LedgerOptions {
  readonly now: () => number;
  readonly logger: Logger;
}

export class UsageLedger {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #logger: Logger;
  #config: KeysConfig;
  readonly metrics: UsageMetrics;
  /** Tally writes running, which a query waits for; and usage stream appends, which only shutdown waits for. */
  readonly #pending = new Set<Promise<unknown>>();
  readonly #appends = new Set<Promise<unknown>>();
  /** Stream appends failed since the last one that worked (one warning per run of failures). */
  #appendsFailed = 0;
  /** Counts not yet written: day -> tally field -> amount. */
  readonly #batch = new Map<string, Map<string, number>>();
  #timer: Timer | undefined;
  #day = "";
  #dayEnd = 0;

  constructor(store: Store, config: KeysConfig, options: LedgerOptions) {
    this.#store = store;
    this.#config = config;
    this.#now = options.now;
    this.#logger = options.logger;
    this.metrics = new UsageMetrics();
    this.metrics.known(config.entries);
  }

  /** Counts one finished request; returns what it spent. */
  record(event: UsageEvent): Spent {
    const figures = event.figures;
    const price = figures && priceFor(this.#config.prices, [figures.model, event.endpointModel, event.group]);
    const spent = !figures || event.cacheHit ? { tokens: 0, usd: 0 } : {
      tokens: totalTokens(figures),
      usd: costOf(price, figures),
    };
    const amounts: Record<string, number> = { requests: 1 };
    if (event.cacheHit) {
      amounts.cache_hits = 1;
      amounts.saved_tokens = figures ? totalTokens(figures) : 0;
    } else if (figures) {
      amounts.input_tokens = figures.input;
      amounts.cached_input_tokens = figures.cachedInput;
      amounts.output_tokens = figures.output;
      amounts.reasoning_tokens = figures.reasoning;
      amounts.usd_micros = Math.round(spent.usd * 1_000_000);
    }
    const now = this.#now();
    this.metrics.count(event, amounts, spent.usd, now);
    this.#add(this.#dayOf(now), `${event.key}${SEP}${event.group}${SEP}${event.endpoint}${SEP}`, amounts);
    const stream = this.#config.usageStream;
    if (stream && this.#store.appendToStream) {
      const entry = streamEntry(event, amounts, spent.usd, now);
      this.#append(this.#store.appendToStream(stream.key, entry, stream.maxLen));
    }
    return spent;
  }

  /** Writes the counts gathered so far to the store (one tally write per day). */
  flush(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    for (const [day, fields] of this.#batch) {
      const write = this.#store.addToTally(`usage:${day}`, Object.fromEntries(fields), KEEP_MS);
      this.#track(write, "usage could not be counted");
    }
    this.#batch.clear();
  }

  #add(day: string, prefix: string, amounts: Readonly<Record<string, number>>): void {
    let fields = this.#batch.get(day);
    if (!fields) this.#batch.set(day, fields = new Map());
    for (const name in amounts) {
      const field = prefix + name;
      fields.set(field, (fields.get(field) ?? 0) + amounts[name]);
    }
    if (this.#timer === undefined) {
      this.#timer = startTimer(FLUSH_MS, () => this.flush(), { ref: false });
    }
  }

  /** The UTC day of `now`, as YYYY-MM-DD (computed once a day). */
  #dayOf(now: number): string {
    if (now >= this.#dayEnd || now < this.#dayEnd - 86_400_000) {
      const start = Math.floor(now / 86_400_000) * 86_400_000;
      this.#day = isoDay(start);
      this.#dayEnd = start + 86_400_000;
    }
    return this.#day;
  }

  /** Whether finished requests go to a usage stream (they are then counted with or without keys). */
  get streams(): boolean {
    return this.#config.usageStream !== undefined;
  }

  /** Takes the prices and stream settings of a reloaded config. */
  configure(config: KeysConfig): void {
    this.#config = config;
    this.metrics.known(config.entries);
  }

  /** Rows per day, key, model group and endpoint, from `from` to `to` (YYYY-MM-DD, inclusive); optionally one key. */
  async query(from: string, to: string, key?: string): Promise<UsageRow[]> {
    // This instance's latest counts first, so what it just served is in the answer (not its stream appends: a
    // hung Redis holds each up to its command timeout, and the answer does not need them).
    this.flush();
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    const days: string[] = [];
    for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) {
      days.push(isoDay(t));
    }
    const tallies = await Promise.all(days.map((day) => this.#store.readTally(`usage:${day}`)));
    return days.flatMap((day, i) => rowsOf(day, tallies[i], key));
  }

  /** Today's usage (UTC) per key, all instances together, for `/stats`: `{key: {requests, ..., usd}}`. */
  async today(): Promise<Record<string, Record<string, number>>> {
    const day = isoDay(this.#now());
    // A Map, not an object: a key named `constructor` or `toString` would find Object's own and be lost.
    const perKey = new Map<string, Record<string, number>>();
    for (const row of await this.query(day, day)) {
      let total = perKey.get(row.key);
      if (!total) perKey.set(row.key, total = { requests: 0 });
      for (const [field, value] of Object.entries(row)) {
        if (typeof value === "number") total[field] = (total[field] ?? 0) + value;
      }
    }
    return Object.fromEntries(perKey);
  }

  /** Waits for the writes still running (shutdown, tests). */
  async settled(): Promise<void> {
    this.flush();
    while (this.#pending.size + this.#appends.size > 0) {
      await Promise.allSettled([...this.#pending, ...this.#appends]);
    }
  }

  /** Tracks a stream append; warns once when appends start failing, and says how many failed once one works. */
  #append(write: Promise<unknown>): void {
    const tracked = write.then(() => {
      if (this.#appendsFailed === 0) return;
      this.#logger.info("usage stream appends work again", { failed: this.#appendsFailed });
      this.#appendsFailed = 0;
    }, (error) => {
      if (this.#appendsFailed++ > 0) return;
      this.#logger.warn("usage stream append failed", {
        error: error instanceof Error ? error.message : String(error),
      });
    }).finally(() => this.#appends.delete(tracked));
    this.#appends.add(tracked);
  }

  #track(write: Promise<unknown>, message: string): void {
    const tracked = write.catch((error) =>
      this.#logger.warn(message, { error: error instanceof Error ? error.message : String(error) })
    ).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }
}

function rowsOf(day: string, tally: Record<string, number>, key: string | undefined): UsageRow[] {
  const rows = new Map<string, Record<string, number | string>>();
  for (const [field, value] of Object.entries(tally)) {
    const parts = field.split(SEP);
    if (parts.length !== 4 || (key !== undefined && parts[0] !== key)) continue;
    const id = parts.slice(0, 3).join(SEP);
    let row = rows.get(id);
    if (!row) {
      row = { date: day, key: parts[0], model_group: parts[1], endpoint: parts[2] };
      for (const name of USAGE_FIELDS) row[name] = 0;
      rows.set(id, row);
    }
    row[parts[3]] = value;
  }
  const out = [...rows.values()].map(({ usd_micros, ...row }) => ({
    ...row,
    usd: Number(usd_micros) / 1_000_000,
  }));
  return (out as UsageRow[]).sort((a, b) => a.key.localeCompare(b.key));
}

function streamEntry(
  event: UsageEvent,
  amounts: Record<string, number>,
  usd: number,
  now: number,
): Record<string, string> {
  return {
    time: isoTime(now),
    request_id: event.requestId,
    key: event.key,
    model_group: event.group,
    endpoint: event.endpoint,
    route: event.route,
    status: String(event.status),
    cache: event.cacheHit ? "hit" : "miss",
    model: event.figures?.model ?? "",
    input_tokens: String(amounts.input_tokens ?? 0),
    cached_input_tokens: String(amounts.cached_input_tokens ?? 0),
    output_tokens: String(amounts.output_tokens ?? 0),
    reasoning_tokens: String(amounts.reasoning_tokens ?? 0),
    saved_tokens: String(amounts.saved_tokens ?? 0),
    usd: usd.toFixed(6),
  };
}
