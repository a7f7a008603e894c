/**
 * The windows a key's limits count in, all in UTC: the minute (rpm, tpm), the day (tokens_per_day) and the
 * calendar month (tokens_per_month, usd_per_month). Each has a start (part of its counter's name), an end (its
 * `Retry-After` and its reset) and a label.
 */

import { isoDay } from "../util/iso_time.ts";

export interface Window {
  /** Epoch ms. */
  readonly start: number;
  readonly end: number;
  /** Part of the counter's name: the start in ms, or `2026-12` for a month. */
  readonly label: string;
}

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

export function minuteWindow(now: number): Window {
  const start = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  return { start, end: start + MINUTE_MS, label: String(start) };
}

// The last day and month computed: every request asks for them, and they change once a day or month.
let lastDay: Window = { start: 0, end: 0, label: "" };
let lastMonth: Window = { start: 0, end: 0, label: "" };

export function dayWindow(now: number): Window {
  if (now >= lastDay.start && now < lastDay.end) return lastDay;
  const start = Math.floor(now / DAY_MS) * DAY_MS;
  return lastDay = { start, end: start + DAY_MS, label: isoDay(start) };
}

export function monthWindow(now: number): Window {
  if (now >= lastMonth.start && now < lastMonth.end) return lastMonth;
  const date = new Date(now);
  const start = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
  const end = Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
  return lastMonth = { start, end, label: isoDay(start).slice(0, 7) };
}

/** A duration the way OpenAI's `x-ratelimit-reset-*` headers write it: `12ms`, `7s`, `6m0s`, `2h3m0s`. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total < 1000) return `${total}ms`;
  const seconds = Math.ceil(total / 1000);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  return m > 0 ? `${m}m${s}s` : `${s}s`;
}
