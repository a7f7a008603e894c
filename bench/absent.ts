/**
 * Figures for a target that is not part of a run (nginx where it cannot be installed): every number NaN, which the
 * table prints as `n/a` and the checks count as not measured, never as a pass or a miss.
 */

import type { MemoryFigures } from "./report.ts";
import type { ConcurrentResult, StreamSummary } from "./streams.ts";
import type { WrkResult } from "./wrk.ts";

export function absentWrk(): WrkResult {
  return {
    requests: NaN,
    rps: NaN,
    p50Ms: NaN,
    p75Ms: NaN,
    p90Ms: NaN,
    p99Ms: NaN,
    non2xx: 0,
    socketErrors: 0,
    raw: "",
  };
}

export function absentStreams(): StreamSummary {
  return {
    count: 0,
    firstP50Ms: NaN,
    firstP99Ms: NaN,
    totalP50Ms: NaN,
    totalP99Ms: NaN,
    eventsPerStream: NaN,
    batchedReads: NaN,
    incomplete: 0,
    firsts: [],
  };
}

export function absentConcurrent(requested: number): ConcurrentResult {
  return {
    requested,
    completed: NaN,
    failed: NaN,
    maxOpen: NaN,
    wallMs: NaN,
    firstP50Ms: NaN,
    firstP99Ms: NaN,
    errors: [],
  };
}

export function absentMemory(): MemoryFigures {
  return { idleMiB: NaN, afterLoadMiB: NaN, settledMiB: NaN, peakMiB: NaN, streamsPeakMiB: NaN };
}
