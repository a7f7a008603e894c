/**
 * Streaming measurements, taken with fetch from the bench process: time to first chunk and to the end of one
 * 50-chunk chat stream (and whether any read carried more than one SSE event, i.e. chunks were batched), and many
 * streams open at once: every one must get its first chunk, stay open until all have, then finish with
 * `data: [DONE]`.
 */

import { percentile } from "./percentiles.ts";

export interface StreamRequest {
  readonly url: string;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
  /** A dedicated client (closed by the caller, closing its connections); default: the global pool. */
  readonly client?: Deno.HttpClient;
}

export interface StreamTiming {
  readonly firstMs: number;
  readonly totalMs: number;
  readonly reads: number;
  readonly events: number;
  /** Reads that carried more than one complete SSE event. */
  readonly batchedReads: number;
  readonly complete: boolean;
}

const decoder = new TextDecoder();
const DONE = "data: [DONE]";

function countEvents(text: string): number {
  let count = 0;
  for (let at = text.indexOf("\n\n"); at !== -1; at = text.indexOf("\n\n", at + 2)) count++;
  return count;
}

/**
 * Runs one stream to its end. `gate` (optional) is awaited after the first chunk, before reading on. Bounded by
 * `timeoutMs` for the whole stream.
 */
export async function timeStream(
  request: StreamRequest,
  timeoutMs: number,
  onFirst?: () => void,
  gate?: Promise<void>,
): Promise<StreamTiming> {
  const started = performance.now();
  const response = await fetch(request.url, {
    method: "POST",
    headers: request.headers,
    body: request.body,
    signal: AbortSignal.timeout(timeoutMs),
    client: request.client,
  });
  if (response.status !== 200 || !response.body) {
    await response.body?.cancel();
    throw new Error(`stream from ${request.url} answered HTTP ${response.status}`);
  }
  let firstMs = NaN;
  let reads = 0;
  let events = 0;
  let batchedReads = 0;
  let tail = "";
  for await (const chunk of response.body) {
    if (reads === 0) {
      firstMs = performance.now() - started;
      onFirst?.();
      if (gate) await gate;
    }
    reads++;
    const text = decoder.decode(chunk, { stream: true });
    const inRead = countEvents(text);
    events += inRead;
    if (inRead > 1) batchedReads++;
    tail = (tail + text).slice(-64);
  }
  return {
    firstMs,
    totalMs: performance.now() - started,
    reads,
    events,
    batchedReads,
    complete: tail.trimEnd().endsWith(DONE),
  };
}

export interface StreamSummary {
  /** Streams measured. */
  readonly count: number;
  readonly firstP50Ms: number;
  readonly firstP99Ms: number;
  readonly totalP50Ms: number;
  readonly totalP99Ms: number;
  readonly eventsPerStream: number;
  /** Reads, over all streams, that carried more than one event. */
  readonly batchedReads: number;
  readonly incomplete: number;
  /** Each stream's time to its first chunk, in the order they ran (round i of the targets' turns is index i). */
  readonly firsts: readonly number[];
}

/** `count` streams per target, one at a time, the targets taking turns so drift hits them alike. */
export async function sequentialStreams(
  targets: Readonly<Record<string, StreamRequest>>,
  count: number,
  timeoutMs: number,
): Promise<Record<string, StreamSummary>> {
  const timings: Record<string, StreamTiming[]> = {};
  const names = Object.keys(targets);
  for (const name of names) timings[name] = [];
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < names.length; j++) {
      const name = names[(i + j) % names.length];
      timings[name].push(await timeStream(targets[name], timeoutMs));
    }
  }
  const summaries: Record<string, StreamSummary> = {};
  for (const name of names) {
    const list = timings[name];
    summaries[name] = {
      count: list.length,
      firstP50Ms: percentile(list.map((t) => t.firstMs), 50),
      firstP99Ms: percentile(list.map((t) => t.firstMs), 99),
      totalP50Ms: percentile(list.map((t) => t.totalMs), 50),
      totalP99Ms: percentile(list.map((t) => t.totalMs), 99),
      eventsPerStream: percentile(list.map((t) => t.events), 50),
      batchedReads: list.reduce((sum, t) => sum + t.batchedReads, 0),
      incomplete: list.filter((t) => !t.complete).length,
      firsts: list.map((t) => t.firstMs),
    };
  }
  return summaries;
}

export interface ConcurrentResult {
  readonly requested: number;
  readonly completed: number;
  readonly failed: number;
  /** Most streams open (first chunk received, not yet finished) at one moment. */
  readonly maxOpen: number;
  readonly wallMs: number;
  readonly firstP50Ms: number;
  readonly firstP99Ms: number;
  /** The first few failure messages. */
  readonly errors: string[];
}

/**
 * Opens `count` streams at once. Each holds after its first chunk until every stream has its first chunk (or
 * `timeoutMs` passed), so all are open together, then reads to the end. Bounded by `timeoutMs` per stream.
 */
export async function concurrentStreams(
  request: StreamRequest,
  count: number,
  timeoutMs: number,
): Promise<ConcurrentResult> {
  let opened = 0;
  let settled = 0;
  let open = 0;
  let maxOpen = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const gateTimer = setTimeout(release, timeoutMs / 2);
  const arrived = () => {
    if (opened + settled >= count) release();
  };
  const started = performance.now();
  const errors: string[] = [];
  const results = await Promise.all(Array.from({ length: count }, async () => {
    let counted = false;
    try {
      const timing = await timeStream(request, timeoutMs, () => {
        counted = true;
        opened++;
        open++;
        maxOpen = Math.max(maxOpen, open);
        arrived();
      }, gate);
      return timing;
    } catch (error) {
      if (errors.length < 5) {
        errors.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
      }
      return undefined;
    } finally {
      if (counted) {
        open--;
        opened--;
      }
      settled++;
      arrived();
    }
  }));
  clearTimeout(gateTimer);
  const done = results.filter((t): t is StreamTiming => t !== undefined && t.complete);
  return {
    requested: count,
    completed: done.length,
    failed: count - done.length,
    maxOpen,
    wallMs: performance.now() - started,
    firstP50Ms: percentile(done.map((t) => t.firstMs), 50),
    firstP99Ms: percentile(done.map((t) => t.firstMs), 99),
    errors,
  };
}
