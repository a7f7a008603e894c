/**
 * 22.3a's measurement: CPU per 50-chunk stream, read in rounds. In each round every target serves `count` streams
 * at once (bench/streams.ts `concurrentStreams`), one target after the other, the order rotating by round; a
 * target's figure for the round is its server process's CPU over its turn divided by the streams it completed.
 * The proxy's ratio to the bare is then taken round by round and summarised by its median and quartiles, so a
 * noisy minute on the machine moves one round's ratio, not the whole row (before session 20 each server served
 * one batch, one after the other, and one ratio of those two batches was the row).
 */

import { percentile } from "./percentiles.ts";
import { cpuMs } from "./cpu_time.ts";
import { RssSampler } from "./rss.ts";
import { type ConcurrentResult, concurrentStreams, type StreamRequest } from "./streams.ts";

export interface RoundsOptions<T extends string> {
  /** In the order the first round takes them (the bench's single batch of before took them in this order). */
  readonly targets: readonly T[];
  readonly rounds: number;
  readonly count: number;
  readonly timeoutMs: number;
  /** A request on `client` (a client of its own per turn, closed after it). */
  readonly request: (target: T, client: Deno.HttpClient) => StreamRequest;
  /** Whose CPU a turn costs; undefined: not measured (the direct target's upstream serves everyone). */
  readonly cpuPid: (target: T) => number | undefined;
  /** Whose RSS is sampled during the first round's turn (the 1,000-stream peak, 22.4c); undefined: none. */
  readonly rssPid: (target: T) => number | undefined;
  readonly pauseMs: number;
}

export interface Rounds<T extends string> {
  /** CPU us per completed stream, per target, in round order (NaN where not measured). */
  readonly cpuUs: Record<T, number[]>;
  /** Each target's first round (what the row showed before rounds). */
  readonly first: Record<T, ConcurrentResult>;
  /** Streams that did not complete, over all rounds. */
  readonly failed: Record<T, number>;
  /** Highest VmRSS sampled during the first round's turn. */
  readonly peakMiB: Record<T, number>;
}

export async function streamRounds<T extends string>(options: RoundsOptions<T>): Promise<Rounds<T>> {
  const { targets } = options;
  const init = <V>(value: () => V) => Object.fromEntries(targets.map((t) => [t, value()])) as Record<T, V>;
  const cpuUs = init<number[]>(() => []);
  const failed = init(() => 0);
  const peakMiB = init(() => NaN);
  const first = {} as Record<T, ConcurrentResult>;
  for (let round = 0; round < options.rounds; round++) {
    for (let i = 0; i < targets.length; i++) {
      const t = targets[(i + round) % targets.length];
      const pid = options.cpuPid(t);
      const rssPid = round === 0 ? options.rssPid(t) : undefined;
      const sampler = rssPid === undefined ? undefined : new RssSampler(rssPid, 100);
      using client = Deno.createHttpClient({});
      const before = pid === undefined ? NaN : cpuMs(pid);
      const result = await concurrentStreams(options.request(t, client), options.count, options.timeoutMs);
      cpuUs[t].push(pid === undefined ? NaN : ((cpuMs(pid) - before) * 1000) / result.completed);
      if (sampler) {
        sampler.stop();
        peakMiB[t] = sampler.maxMiB;
      }
      if (round === 0) first[t] = result;
      failed[t] += result.failed;
      await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  }
  return { cpuUs, first, failed, peakMiB };
}

/** Round-by-round ratios a/b (or differences a - b), their median and quartiles (nearest rank). */
export interface Paired {
  readonly median: number;
  readonly q1: number;
  readonly q3: number;
  /** The first round's (the single figure the row showed before rounds). */
  readonly first: number;
  readonly each: readonly number[];
}

export function paired(
  a: readonly number[],
  b: readonly number[],
  combine: (a: number, b: number) => number = (x, y) => x / y,
): Paired {
  const each = a.map((value, i) => combine(value, b[i])).filter(Number.isFinite);
  return {
    median: percentile(each, 50),
    q1: percentile(each, 25),
    q3: percentile(each, 75),
    first: a.length > 0 ? combine(a[0], b[0]) : NaN,
    each,
  };
}
