/**
 * Short rolling histories of upstream attempts per endpoint, for the `/ui` dashboard: attempts, errors and the
 * time to response headers in 2-second slots over the last 5 minutes, plus the attempts in flight now. Kept in
 * memory by each instance and bounded: a fixed ring of slots per endpoint, a fixed log-scale latency histogram per
 * slot, and at most MAX_ENDPOINTS endpoints (configured ids only reach it, so the cap is never hit in practice).
 */

import type { AttemptObserver, AttemptWatch } from "../upstream/attempt.ts";
import { isEndpointFailure } from "./labels.ts";

export const SLOT_MS = 2000;
export const SLOTS = 150;
const MAX_ENDPOINTS = 512;

/** Latency buckets: bucket i holds [MIN_MS * FACTOR^(i-1), MIN_MS * FACTOR^i); 64 buckets reach past 10 minutes. */
const FACTOR = 1.25;
const MIN_MS = 0.5;
const BUCKETS = 64;
const LOG_FACTOR = Math.log(FACTOR);

function bucketOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / LOG_FACTOR));
}

/** A bucket's representative value: the geometric middle of its bounds. */
const bucketValue = (i: number): number => i === 0 ? MIN_MS : MIN_MS * FACTOR ** (i - 0.5);

class Slot {
  /** Which 2-second period (epoch ms / SLOT_MS) this slot holds; -1 when unused. */
  period = -1;
  attempts = 0;
  errors = 0;
  answered = 0;
  readonly latency = new Uint32Array(BUCKETS);

  reset(period: number): void {
    this.period = period;
    this.attempts = 0;
    this.errors = 0;
    this.answered = 0;
    this.latency.fill(0);
  }

  /** The q-quantile of the latencies, from the histogram; null without any. */
  quantile(q: number): number | null {
    if (this.answered === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.answered));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.latency[i];
      if (seen >= rank) return Math.round(bucketValue(i) * 10) / 10;
    }
    return null;
  }
}

class EndpointWindow {
  inFlight = 0;
  /** Allocated as periods are first used, so a quiet endpoint costs little. */
  readonly slots: Slot[] = [];

  slot(period: number): Slot {
    const index = period % SLOTS;
    let slot = this.slots[index];
    if (!slot) slot = this.slots[index] = new Slot();
    if (slot.period !== period) slot.reset(period);
    return slot;
  }
}

/** One endpoint's history, oldest first, one entry per slot (null where nothing was measured). */
export interface EndpointHistory {
  readonly attempts: number[];
  readonly p50_ms: (number | null)[];
  readonly p99_ms: (number | null)[];
  /** Failed attempts / attempts, 0..1; null for slots without attempts. */
  readonly error_rate: (number | null)[];
}

export class RecentWindows {
  readonly #now: () => number;
  readonly #endpoints = new Map<string, EndpointWindow>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  #window(id: string): EndpointWindow | undefined {
    let window = this.#endpoints.get(id);
    if (!window && this.#endpoints.size < MAX_ENDPOINTS) {
      window = new EndpointWindow();
      this.#endpoints.set(id, window);
    }
    return window;
  }

  /** An attempt was sent to the endpoint. */
  started(id: string): void {
    const window = this.#window(id);
    if (window) window.inFlight++;
  }

  /** The attempt's outcome: its time to response headers (null without an answer) and whether it failed. */
  outcome(id: string, ms: number | null, failed: boolean): void {
    const slot = this.#window(id)?.slot(Math.floor(this.#now() / SLOT_MS));
    if (!slot) return;
    slot.attempts++;
    if (failed) slot.errors++;
    if (ms !== null) {
      slot.answered++;
      slot.latency[bucketOf(ms)]++;
    }
  }

  /** The attempt is over (its body read or given up). */
  ended(id: string): void {
    const window = this.#endpoints.get(id);
    if (window && window.inFlight > 0) window.inFlight--;
  }

  inFlight(id: string): number {
    return this.#endpoints.get(id)?.inFlight ?? 0;
  }

  /** Epoch ms of the start of the oldest slot `history` returns. */
  firstSlotAt(): number {
    return (Math.floor(this.#now() / SLOT_MS) - SLOTS + 1) * SLOT_MS;
  }

  history(id: string): EndpointHistory {
    const history: EndpointHistory = { attempts: [], p50_ms: [], p99_ms: [], error_rate: [] };
    const window = this.#endpoints.get(id);
    const last = Math.floor(this.#now() / SLOT_MS);
    for (let period = last - SLOTS + 1; period <= last; period++) {
      const slot = window?.slots[period % SLOTS];
      if (!slot || slot.period !== period || slot.attempts === 0) {
        history.attempts.push(0);
        history.p50_ms.push(null);
        history.p99_ms.push(null);
        history.error_rate.push(null);
        continue;
      }
      history.attempts.push(slot.attempts);
      history.p50_ms.push(slot.quantile(0.5));
      history.p99_ms.push(slot.quantile(0.99));
      history.error_rate.push(Math.round((slot.errors / slot.attempts) * 1000) / 1000);
    }
    return history;
  }
}

/** Feeds one attempt into the windows: in flight from `start` to `ended`, latency to its response headers. */
class RecentAttempt implements AttemptWatch {
  readonly #windows: RecentWindows;
  readonly #id: string;
  readonly #sentAt = performance.now();

  constructor(windows: RecentWindows, id: string) {
    this.#windows = windows;
    this.#id = id;
    windows.started(id);
  }

  answered(status: number): void {
    this.#windows.outcome(this.#id, performance.now() - this.#sentAt, isEndpointFailure(status));
  }

  failed(kind: "timeout" | "connection" | "aborted"): void {
    // A client that left says nothing about the endpoint.
    if (kind !== "aborted") this.#windows.outcome(this.#id, null, true);
  }

  ended(): void {
    this.#windows.ended(this.#id);
  }
}

/** The upstream client's observer that keeps `windows` up to date. */
export const recentObserver = (windows: RecentWindows): AttemptObserver => ({
  start: (request) => new RecentAttempt(windows, request.endpoint.id),
});
