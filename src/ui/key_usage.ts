/**
 * The dashboard's per-key usage, bounded: the keys with the most requests today (ties by name) one by one, and
 * the rest summed in one row, so `/ui/data` stays the same size however many keys were used. `/stats` keeps
 * every key.
 */

/** Keys shown one by one. */
export const MAX_KEYS_SHOWN = 50;

export interface KeyUsage {
  /** The most used keys (at most `MAX_KEYS_SHOWN`), each with its figures (`requests`, tokens, `usd`, ...). */
  readonly top: Record<string, Record<string, number>>;
  /** The keys past those: how many, and their figures summed; null when every key is in `top`. */
  readonly others: { readonly keys: number; readonly figures: Record<string, number> } | null;
}

export function keyUsage(perKey: Record<string, Record<string, number>>, shown = MAX_KEYS_SHOWN): KeyUsage {
  const ranked = Object.entries(perKey).sort(([a, x], [b, y]) =>
    (y.requests ?? 0) - (x.requests ?? 0) || (a < b ? -1 : a > b ? 1 : 0)
  );
  const rest = ranked.slice(shown);
  if (rest.length === 0) return { top: perKey, others: null };
  const figures: Record<string, number> = { requests: 0 };
  for (const [, row] of rest) {
    for (const [field, value] of Object.entries(row)) figures[field] = (figures[field] ?? 0) + value;
  }
  return { top: Object.fromEntries(ranked.slice(0, shown)), others: { keys: rest.length, figures } };
}
