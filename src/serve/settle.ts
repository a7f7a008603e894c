/**
 * A few full garbage collections in the proxy's first quiet moments after start (issue 22.4a, idle RSS).
 *
 * Loading the config, building the services and serving the first requests (V8 compiling the code they run) leave
 * garbage in V8's old generation and a young generation grown for start-up. Nothing collects it until the heap
 * grows enough for a major collection, or V8's memory reducer starts, 30 s in: an idle proxy holds ~3 MiB more
 * meanwhile. Here a full collection runs as soon as the proxy is quiet (no new request for `quietMs`, and none in
 * flight: each one counts until its answer has been sent, streams included) after start, and again each time new
 * requests have come and gone, at most `rounds` times in the first `windowMs`. It is V8's "last resort" collection
 * (what the memory reducer aims at: old garbage freed, the young generation shrunk, free pages given back), two
 * passes of ~5-15 ms each on this heap, but it stops the world: on the heap of 1,000 open streams it would stall
 * every one of them for hundreds of ms, so it never runs while an answer is on its way. Nor once the server has
 * served more than `maxRequests`: its heap then holds what the traffic keeps (cached answers, pooled connections),
 * not start-up garbage, and a last-resort collection of it costs ~150 ms (30 MiB with 10,000 cached answers) and
 * shrinks the heap's limits just before the traffic comes back, which then pays more mark-compacts to grow them
 * again (issue 22.2b: a proxy under load from its start had both collections land in its first minute of misses).
 *
 * It needs V8's `gc()`, which `--expose-gc` (in the shipped V8 flags, scripts/compile.ts) makes global; without it
 * this does nothing.
 */

import type { Logger } from "../logger.ts";
import { startTimer } from "../util/timer.ts";
import type { Traffic } from "./server.ts";

export interface SettleOptions {
  /** Collect after this long without a new request. Default 250 ms. */
  readonly quietMs?: number;
  /** At most this many collections. Default 2: after start, after the first requests. */
  readonly rounds?: number;
  /** Only this long after start. Default 60 s. */
  readonly windowMs?: number;
  /** Only while the server has served at most this many requests. Default 1,000. */
  readonly maxRequests?: number;
  /** V8's full collection; default the global `gc` that `--expose-gc` installs (none: nothing to do). */
  readonly gc?: (options?: GcOptions) => void;
  readonly logger?: Logger;
}

export interface Settling extends Disposable {
  /** Collections run so far. */
  readonly collections: number;
}

/**
 * Collects at the quiet moments after start of the server whose `traffic` it reads (its own counts: nothing is
 * added to a request); dispose to stop early (shutdown).
 */
export function settleAfterStart(traffic: Traffic, options: SettleOptions = {}): Settling {
  const gc = options.gc ?? (globalThis as { gc?: (options?: GcOptions) => void }).gc;
  if (typeof gc !== "function") return { collections: 0, [Symbol.dispose]: () => {} };
  const { quietMs = 250, rounds = 2, windowMs = 60_000, maxRequests = 1000, logger } = options;
  let seen = 0;
  let collectedAt = -1;
  let collections = 0;
  const started = performance.now();
  const stop = () => timer.cancel();
  const timer = startTimer(quietMs, () => {
    const { requests, inflight } = traffic;
    if (requests > maxRequests) return stop();
    const quiet = requests === seen && inflight === 0;
    seen = requests;
    if (quiet && requests !== collectedAt) {
      collectedAt = requests;
      collections++;
      const before = logger?.enabled("debug") ? Deno.memoryUsage().heapUsed : 0;
      gc({ type: "major", execution: "sync", flavor: "last-resort" });
      if (before > 0) {
        logger!.debug("start-up garbage collected", {
          requests,
          heap_used_mib: round(before),
          heap_used_after_mib: round(Deno.memoryUsage().heapUsed),
        });
      }
    }
    if (collections >= rounds || performance.now() - started >= windowMs) stop();
  }, { repeat: true, ref: false });
  return {
    get collections() {
      return collections;
    },
    [Symbol.dispose]: stop,
  };
}

const round = (bytes: number) => Math.round(bytes / 1024 / 1024 * 10) / 10;

/** `gc()`'s options under `--expose-gc` (V8's gc extension). */
export interface GcOptions {
  readonly type?: "major" | "minor" | "major-snapshot";
  readonly execution?: "sync" | "async";
  readonly flavor?: "regular" | "last-resort";
}
