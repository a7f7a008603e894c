/**
 * Time, passed in: every layer that reads the time or waits takes a `Clock`, so tests can move it.
 */

import type { AbortLike } from "./abort_like.ts";
import { startTimer } from "../util/timer.ts";

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Waits `ms`; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortLike): Promise<void>;
}

export const systemClock: Clock = {
  now: Date.now,
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = startTimer(ms, () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
      const onAbort = () => {
        timer.cancel();
        reject(signal!.reason);
      };
      // A signal aborts once: no `{ once: true }`, which an `AbortLike` (a coalesced flight's signal) does not take.
      signal?.addEventListener("abort", onAbort);
    }),
};
