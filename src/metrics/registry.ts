/**
 * A small Prometheus text-format writer: counters, gauges and histograms with a fixed list of label names.
 * Recording is O(1) in the number of series and allocates nothing once a series exists: label values are looked
 * up through nested Maps (no key strings are built), and histograms keep plain per-bucket counts that are summed
 * only when `/metrics` is scraped. Label values must come from bounded sets (configured names, status codes),
 * never from request text.
 */

export type LabelValue = string | number;

type Kind = "counter" | "gauge" | "histogram";

/** Series of one metric, found by walking one Map level per label. */
class SeriesTree<S> {
  readonly #root = new Map<LabelValue, unknown>();
  readonly #depth: number;
  readonly #create: () => S;
  readonly #all: { values: readonly LabelValue[]; series: S }[] = [];

  constructor(depth: number, create: () => S) {
    this.#depth = depth;
    this.#create = create;
  }

  get(values: readonly LabelValue[]): S {
    if (values.length !== this.#depth) {
      throw new RangeError(`expected ${this.#depth} label values, got ${values.length}`);
    }
    if (this.#depth === 0) return this.#single();
    let level = this.#root;
    for (let i = 0; i < this.#depth - 1; i++) {
      let next = level.get(values[i]) as Map<LabelValue, unknown> | undefined;
      if (!next) level.set(values[i], next = new Map());
      level = next;
    }
    let series = level.get(values[this.#depth - 1]) as S | undefined;
    if (series === undefined) {
      series = this.#create();
      level.set(values[this.#depth - 1], series);
      this.#all.push({ values: [...values], series });
    }
    return series;
  }

  #single(): S {
    if (this.#all.length === 0) this.#all.push({ values: [], series: this.#create() });
    return this.#all[0].series;
  }

  entries(): readonly { values: readonly LabelValue[]; series: S }[] {
    return this.#all;
  }

  clear(): void {
    this.#root.clear();
    this.#all.length = 0;
  }

  /** Keeps only the series `keep` says yes to (the same objects, so a held series stays this tree's). */
  retain(keep: (values: readonly LabelValue[], series: S) => boolean): void {
    const kept = this.#all.filter((entry) => keep(entry.values, entry.series));
    this.clear();
    for (const entry of kept) {
      let level = this.#root;
      for (let i = 0; i < this.#depth - 1; i++) {
        let next = level.get(entry.values[i]) as Map<LabelValue, unknown> | undefined;
        if (!next) level.set(entry.values[i], next = new Map());
        level = next;
      }
      level.set(entry.values[this.#depth - 1], entry.series);
      this.#all.push(entry);
    }
  }
}

abstract class Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly kind: Kind;

  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`invalid metric name '${name}'`);
    for (const label of labelNames) {
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(label) || label.startsWith("__") || label === "le") {
        throw new Error(`invalid label name '${label}' on metric '${name}'`);
      }
    }
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  /** Appends this metric's exposition lines. */
  abstract write(out: string[]): void;

  protected header(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    out.push(`# TYPE ${this.name} ${this.kind}`);
  }

  protected labelText(values: readonly LabelValue[], extra?: string): string {
    const parts = this.labelNames.map((name, i) => `${name}="${escapeLabel(String(values[i]))}"`);
    if (extra !== undefined) parts.push(extra);
    return parts.length === 0 ? "" : `{${parts.join(",")}}`;
  }
}

/** One number that only goes up. */
export interface CounterSeries {
  value: number;
}

/** One number per label set: what counters and gauges share. */
abstract class ValueMetric extends Metric {
  protected readonly series: SeriesTree<CounterSeries>;

  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, labelNames);
    this.series = new SeriesTree(labelNames.length, () => ({ value: 0 }));
  }

  /** The series for these label values (create it once, keep it, and update it with no lookup at all). */
  labels(...values: LabelValue[]): CounterSeries {
    return this.series.get(values);
  }

  /** Current value of one series (0 when it was never recorded). */
  get(...values: LabelValue[]): number {
    return this.series.get(values).value;
  }

  write(out: string[]): void {
    this.header(out);
    for (const { values, series } of this.series.entries()) {
      out.push(`${this.name}${this.labelText(values)} ${formatNumber(series.value)}`);
    }
  }
}

export class Counter extends ValueMetric {
  readonly kind = "counter";

  /** Forgets the series still at 0 that `stale` names (labelled by what is no longer configured). */
  forgetZeros(stale: (values: readonly LabelValue[]) => boolean): void {
    if (this.labelNames.length === 0) return;
    this.series.retain((values, series) => series.value !== 0 || !stale(values));
  }

  inc(values: readonly LabelValue[] = [], by = 1): void {
    this.series.get(values).value += by;
  }
}

/** A number that goes up and down; usually set when `/metrics` is scraped. */
export class Gauge extends ValueMetric {
  readonly kind = "gauge";

  set(values: readonly LabelValue[], value: number): void {
    this.series.get(values).value = value;
  }

  /** Forgets every series (before setting the current ones at scrape time). */
  reset(): void {
    this.series.clear();
  }
}

/** Counts per bucket (not cumulative: summed at scrape time), plus the sum and count of every observation. */
export interface HistogramSeries {
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class Histogram extends Metric {
  readonly kind = "histogram";
  /** Upper bounds, ascending; `+Inf` is implicit. */
  readonly buckets: readonly number[];
  readonly #series: SeriesTree<HistogramSeries>;

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i] > buckets[i - 1])) throw new Error(`buckets of '${name}' must be ascending`);
    }
    this.buckets = buckets;
    const size = buckets.length + 1;
    this.#series = new SeriesTree(
      labelNames.length,
      () => ({ counts: new Float64Array(size), sum: 0, count: 0 }),
    );
  }

  labels(...values: LabelValue[]): HistogramSeries {
    return this.#series.get(values);
  }

  observe(values: readonly LabelValue[], value: number): void {
    this.observeSeries(this.#series.get(values), value);
  }

  /** Records into a series already looked up. */
  observeSeries(series: HistogramSeries, value: number): void {
    if (!Number.isFinite(value)) return; // one NaN would spoil _sum for good
    const buckets = this.buckets;
    let i = 0;
    while (i < buckets.length && value > buckets[i]) i++;
    series.counts[i]++;
    series.sum += value;
    series.count++;
  }

  write(out: string[]): void {
    this.header(out);
    for (const { values, series } of this.#series.entries()) {
      let cumulative = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        cumulative += series.counts[i];
        const le = i < this.buckets.length ? formatNumber(this.buckets[i]) : "+Inf";
        out.push(`${this.name}_bucket${this.labelText(values, `le="${le}"`)} ${cumulative}`);
      }
      out.push(`${this.name}_sum${this.labelText(values)} ${formatNumber(series.sum)}`);
      out.push(`${this.name}_count${this.labelText(values)} ${series.count}`);
    }
  }
}

/** The metrics of one process, written in registration order. */
export class Registry {
  readonly #metrics: Metric[] = [];
  readonly #names = new Set<string>();

  register<M extends Metric>(metric: M): M {
    if (this.#names.has(metric.name)) throw new Error(`metric '${metric.name}' is registered twice`);
    this.#names.add(metric.name);
    this.#metrics.push(metric);
    return metric;
  }

  /** The Prometheus text exposition format (version 0.0.4). */
  render(): string {
    const out: string[] = [];
    for (const metric of this.#metrics) metric.write(out);
    return out.join("\n") + "\n";
  }
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatNumber(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
