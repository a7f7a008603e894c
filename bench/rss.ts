/**
 * Resident memory of a process from /proc/PID/status (Linux): VmRSS now, VmHWM its peak since it started, and a
 * sampler that keeps the highest VmRSS seen while a phase runs plus a time series for the soak.
 */

export interface Memory {
  /** Resident set now, MiB. */
  readonly rssMiB: number;
  /** Highest resident set since the process started (VmHWM), MiB. */
  readonly peakMiB: number;
}

/** Reads /proc/PID/status; throws when the process is gone. */
export function readMemory(pid: number): Memory {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return { rssMiB: field(status, "VmRSS"), peakMiB: field(status, "VmHWM") };
}

function field(status: string, name: string): number {
  const match = status.match(new RegExp(`^${name}:\\s+(\\d+) kB$`, "m"));
  if (!match) throw new Error(`/proc status has no ${name} line`);
  return Number(match[1]) / 1024;
}

export interface Sample {
  /** Milliseconds since the sampler started. */
  readonly atMs: number;
  readonly rssMiB: number;
}

/** Samples VmRSS every `intervalMs` until stopped (or `maxSamples` taken: bounded). */
export class RssSampler {
  readonly samples: Sample[] = [];
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #started = performance.now();

  constructor(pid: number, intervalMs: number, maxSamples = 100_000) {
    const take = () => {
      if (this.samples.length >= maxSamples) return;
      try {
        this.samples.push({ atMs: performance.now() - this.#started, rssMiB: readMemory(pid).rssMiB });
      } catch { /* process gone: nothing to sample */ }
    };
    take();
    this.#timer = setInterval(take, intervalMs);
  }

  /** Highest VmRSS sampled. */
  get maxMiB(): number {
    return this.samples.reduce((max, sample) => Math.max(max, sample.rssMiB), 0);
  }

  stop(): Sample[] {
    clearInterval(this.#timer);
    return this.samples;
  }
}

export interface Trend {
  /** Least-squares slope over the samples after the warm-up fifth, MiB per minute. */
  readonly slopeMiBPerMin: number;
  /** Median of the first and last quarter of the samples after warm-up, MiB. */
  readonly firstMiB: number;
  readonly lastMiB: number;
  /** Whether the process stayed flat: the last quarter within 5% (or 4 MiB) of the first. */
  readonly flat: boolean;
}

/** Growth trend of a time series; the first fifth is skipped as warm-up (JIT, pools, caches filling). */
export function trend(samples: readonly Sample[]): Trend {
  const kept = samples.slice(Math.floor(samples.length / 5));
  if (kept.length < 4) return { slopeMiBPerMin: 0, firstMiB: NaN, lastMiB: NaN, flat: true };
  const n = kept.length;
  const meanX = kept.reduce((s, p) => s + p.atMs, 0) / n;
  const meanY = kept.reduce((s, p) => s + p.rssMiB, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of kept) {
    num += (p.atMs - meanX) * (p.rssMiB - meanY);
    den += (p.atMs - meanX) ** 2;
  }
  const slopeMiBPerMin = den === 0 ? 0 : (num / den) * 60_000;
  const quarter = Math.max(1, Math.floor(n / 4));
  const firstMiB = median(kept.slice(0, quarter).map((p) => p.rssMiB));
  const lastMiB = median(kept.slice(-quarter).map((p) => p.rssMiB));
  const flat = lastMiB <= Math.max(firstMiB * 1.05, firstMiB + 4);
  return { slopeMiBPerMin, firstMiB, lastMiB, flat };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
