/**
 * Entries that expire, for the in-process store's maps: a value with its expiry, and the small incremental sweep
 * that removes expired ones as writes go by (no timer keeps the process alive).
 */

export interface Entry<T> {
  value: T;
  /** Epoch milliseconds; 0 means never. */
  expiresAt: number;
}

/** Entries the sweep inspects per write: enough to keep pace with insertions, small enough to stay cheap. */
const SWEEP_STEP = 8;

/**
 * Inspects up to SWEEP_STEP entries from where the last sweep stopped, deleting expired ones. Map iterators stay
 * valid across deletes and inserts, so one iterator walks the map in rounds; returns it (null when a round ends).
 */
export function sweep<T>(
  map: Map<string, Entry<T>>,
  iterator: Iterator<[string, Entry<T>]> | null,
  now: number,
): Iterator<[string, Entry<T>]> | null {
  if (map.size === 0) return null;
  const it = iterator ?? map.entries();
  for (let i = 0; i < SWEEP_STEP; i++) {
    const step = it.next();
    if (step.done) return null;
    const [key, entry] = step.value;
    if (entry.expiresAt !== 0 && entry.expiresAt <= now) map.delete(key);
  }
  return it;
}
