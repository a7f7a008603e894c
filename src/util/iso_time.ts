/**
 * `Date.prototype.toISOString` written out from the UTC getters. V8's own date formatting pages in about 1.7 MiB
 * of the runtime on its first use (idle RSS), and the proxy formats a time with every log line and for the
 * usage and limit windows of keys; these getters cost nothing of the kind.
 */

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/** `new Date(ms).toISOString()`: `YYYY-MM-DDTHH:MM:SS.mmmZ` (years outside 0-9999, or no date: V8's own). */
export function isoTime(ms: number): string {
  const date = new Date(ms);
  const year = date.getUTCFullYear();
  if (!(year >= 1000 && year <= 9999)) return date.toISOString();
  const millis = date.getUTCMilliseconds();
  return `${year}-${pad2(date.getUTCMonth() + 1)}-${pad2(date.getUTCDate())}T${pad2(date.getUTCHours())}:${
    pad2(date.getUTCMinutes())
  }:${pad2(date.getUTCSeconds())}.${millis < 10 ? "00" : millis < 100 ? "0" : ""}${millis}Z`;
}

/** The UTC day of `ms`, `YYYY-MM-DD`. */
export const isoDay = (ms: number): string => isoTime(ms).slice(0, 10);
