/**
 * The soak: the proxy under steady load for MINUTES (wrk at 64 connections on JSON, plus a few streams at a time
 * from this process), its RSS sampled throughout, and the trend of that series. Bounded by the duration.
 */

import type { SoakFigures } from "./report.ts";
import { RssSampler, trend } from "./rss.ts";
import { type StreamRequest, timeStream } from "./streams.ts";
import { runWrk, type WrkOptions } from "./wrk.ts";

export interface SoakOptions {
  readonly minutes: number;
  readonly pid: number;
  readonly wrk: Omit<WrkOptions, "durationS" | "connections" | "threads">;
  readonly stream: StreamRequest;
  /** Streams kept running at once during the soak. */
  readonly streamConcurrency: number;
}

export async function soak(options: SoakOptions): Promise<SoakFigures> {
  const durationS = Math.max(1, Math.round(options.minutes * 60));
  // About 120 samples whatever the length, at least one a second.
  const sampler = new RssSampler(options.pid, Math.max(1000, (durationS * 1000) / 120));
  const deadline = performance.now() + durationS * 1000;
  let streams = 0;
  let streamErrors = 0;
  const streamLoop = async () => {
    while (performance.now() < deadline) {
      try {
        const timing = await timeStream(options.stream, 30_000);
        if (timing.complete) streams++;
        else streamErrors++;
      } catch {
        streamErrors++;
      }
    }
  };
  const [wrk] = await Promise.all([
    runWrk({ ...options.wrk, durationS, connections: 64, threads: 2 }),
    ...Array.from({ length: options.streamConcurrency }, streamLoop),
  ]);
  const samples = sampler.stop();
  return {
    minutes: options.minutes,
    rps: wrk.rps,
    errors: wrk.non2xx + wrk.socketErrors + streamErrors,
    trend: trend(samples),
    streams,
    samples,
  };
}
