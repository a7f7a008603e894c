/**
 * String values bounded by count and bytes, least recently used first out, with a per-entry expiry: what the
 * in-memory store keeps cached answers in. A Map keeps insertion order, so re-inserting on every read makes
 * its first key the least recently used one; no timers, time comes from the caller's clock.
 */

export interface LruBounds {
  readonly maxEntries: number;
  /** Bound on the UTF-8 size of keys plus values. */
  readonly maxBytes: number;
}

export interface Usage {
  readonly entries: number;
  readonly bytes: number;
}

interface Slot {
  readonly value: string;
  /** Epoch milliseconds; 0 means never. */
  readonly expiresAt: number;
  readonly size: number;
}

export class LruValues {
  readonly #bounds: LruBounds;
  readonly #now: () => number;
  readonly #slots = new Map<string, Slot>();
  #bytes = 0;

  constructor(bounds: LruBounds, now: () => number = Date.now) {
    this.#bounds = bounds;
    this.#now = now;
  }

  /** The live value at `key`, which becomes the most recently used; null when absent or expired. */
  get(key: string): string | null {
    const slot = this.#live(key);
    if (slot === undefined) return null;
    this.#slots.delete(key);
    this.#slots.set(key, slot);
    return slot.value;
  }

  has(key: string): boolean {
    return this.#live(key) !== undefined;
  }

  /**
   * Stores `value`, evicting the least recently used entries past the bounds. Throws when it can never fit.
   */
  set(key: string, value: string, ttlMs?: number): void {
    const size = utf8Length(key) + utf8Length(value);
    if (size > this.#bounds.maxBytes) {
      throw new RangeError(
        `'${key}' is ${size} bytes, more than the whole bound of ${this.#bounds.maxBytes}`,
      );
    }
    this.delete(key);
    const expiresAt = ttlMs !== undefined && ttlMs > 0 ? this.#now() + ttlMs : 0;
    this.#slots.set(key, { value, expiresAt, size });
    this.#bytes += size;
    for (const [oldest, slot] of this.#slots) {
      if (this.#slots.size <= this.#bounds.maxEntries && this.#bytes <= this.#bounds.maxBytes) break;
      this.#slots.delete(oldest);
      this.#bytes -= slot.size;
    }
  }

  /** Removes `key`; true when it was live. */
  delete(key: string): boolean {
    const slot = this.#slots.get(key);
    if (slot === undefined) return false;
    this.#slots.delete(key);
    this.#bytes -= slot.size;
    return !this.#expired(slot, this.#now());
  }

  /** Removes every key under `prefix`; returns how many live ones went. */
  deleteByPrefix(prefix: string): number {
    const now = this.#now();
    let count = 0;
    for (const [key, slot] of this.#slots) {
      if (!key.startsWith(prefix)) continue;
      this.#slots.delete(key);
      this.#bytes -= slot.size;
      if (!this.#expired(slot, now)) count++;
    }
    return count;
  }

  /** Live entries and their bytes (expired ones are dropped on the way). */
  usage(): Usage {
    const now = this.#now();
    for (const [key, slot] of this.#slots) {
      if (!this.#expired(slot, now)) continue;
      this.#slots.delete(key);
      this.#bytes -= slot.size;
    }
    return { entries: this.#slots.size, bytes: this.#bytes };
  }

  get size(): number {
    return this.#slots.size;
  }

  clear(): void {
    this.#slots.clear();
    this.#bytes = 0;
  }

  #live(key: string): Slot | undefined {
    const slot = this.#slots.get(key);
    if (slot === undefined) return undefined;
    if (!this.#expired(slot, this.#now())) return slot;
    this.#slots.delete(key);
    this.#bytes -= slot.size;
    return undefined;
  }

  #expired(slot: Slot, now: number): boolean {
    return slot.expiresAt !== 0 && slot.expiresAt <= now;
  }
}

/** Bytes of `text` in UTF-8, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff) i++, bytes += 2; // a surrogate pair: 4 bytes for 2 units
    else bytes += 2;
  }
  return bytes;
}
