/**
 * String values bounded by count and bytes, least recently used first out, with a per-entry expiry: what the
 * in-memory store keeps cached answers in. A Map finds a key; a doubly linked list through the slots keeps the
 * order of use, so reading, writing and evicting never walk the Map (a Map that churns keeps the holes of deleted
 * entries until it is rehashed, and walking it from its start to find the oldest key gets slower with each one).
 * No timers: time comes from the caller's clock.
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
  readonly key: string;
  readonly value: string;
  /** Epoch milliseconds; 0 means never. */
  readonly expiresAt: number;
  readonly size: number;
  /** The next older and newer slots in the order of use. */
  older: Slot | undefined;
  newer: Slot | undefined;
}

export class LruValues {
  readonly #bounds: LruBounds;
  readonly #now: () => number;
  readonly #slots = new Map<string, Slot>();
  /** Least and most recently used. */
  #oldest: Slot | undefined;
  #newest: Slot | undefined;
  #bytes = 0;

  constructor(bounds: LruBounds, now: () => number = Date.now) {
    this.#bounds = bounds;
    this.#now = now;
  }

  /** The live value at `key`, which becomes the most recently used; null when absent or expired. */
  get(key: string): string | null {
    const slot = this.#live(key);
    if (slot === undefined) return null;
    if (slot !== this.#newest) {
      this.#unlink(slot);
      this.#append(slot);
    }
    return slot.value;
  }

  has(key: string): boolean {
    return this.#live(key) !== undefined;
  }

  /**
   * Stores `value`, evicting the least recently used entries past the bounds. Throws when it can never fit.
   * `valueBytes`: the value's UTF-8 size when the caller knows it; else it is counted here (a scan of the value,
   * which copies a value joined from pieces into one string first).
   */
  set(key: string, value: string, ttlMs?: number, valueBytes?: number): void {
    const size = utf8Length(key) + (valueBytes ?? utf8Length(value));
    if (size > this.#bounds.maxBytes) {
      throw new RangeError(
        `'${key}' is ${size} bytes, more than the whole bound of ${this.#bounds.maxBytes}`,
      );
    }
    this.delete(key);
    const expiresAt = ttlMs !== undefined && ttlMs > 0 ? this.#now() + ttlMs : 0;
    const slot: Slot = { key, value, expiresAt, size, older: undefined, newer: undefined };
    this.#slots.set(key, slot);
    this.#append(slot);
    this.#bytes += size;
    while (this.#slots.size > this.#bounds.maxEntries || this.#bytes > this.#bounds.maxBytes) {
      this.#remove(this.#oldest!);
    }
  }

  /** Removes `key`; true when it was live. */
  delete(key: string): boolean {
    const slot = this.#slots.get(key);
    if (slot === undefined) return false;
    this.#remove(slot);
    return !this.#expired(slot, this.#now());
  }

  /** Removes every key under `prefix`; returns how many live ones went. */
  deleteByPrefix(prefix: string): number {
    const now = this.#now();
    let count = 0;
    for (const [key, slot] of this.#slots) {
      if (!key.startsWith(prefix)) continue;
      this.#remove(slot);
      if (!this.#expired(slot, now)) count++;
    }
    return count;
  }

  /** Live entries and their bytes (expired ones are dropped on the way). */
  usage(): Usage {
    const now = this.#now();
    for (const slot of this.#slots.values()) {
      if (this.#expired(slot, now)) this.#remove(slot);
    }
    return { entries: this.#slots.size, bytes: this.#bytes };
  }

  get size(): number {
    return this.#slots.size;
  }

  clear(): void {
    this.#slots.clear();
    this.#oldest = this.#newest = undefined;
    this.#bytes = 0;
  }

  #live(key: string): Slot | undefined {
    const slot = this.#slots.get(key);
    if (slot === undefined) return undefined;
    if (!this.#expired(slot, this.#now())) return slot;
    this.#remove(slot);
    return undefined;
  }

  #expired(slot: Slot, now: number): boolean {
    return slot.expiresAt !== 0 && slot.expiresAt <= now;
  }

  #remove(slot: Slot): void {
    this.#slots.delete(slot.key);
    this.#unlink(slot);
    this.#bytes -= slot.size;
  }

  #append(slot: Slot): void {
    slot.older = this.#newest;
    slot.newer = undefined;
    if (this.#newest) this.#newest.newer = slot;
    else this.#oldest = slot;
    this.#newest = slot;
  }

  #unlink(slot: Slot): void {
    if (slot.older) slot.older.newer = slot.newer;
    else this.#oldest = slot.newer;
    if (slot.newer) slot.newer.older = slot.older;
    else this.#newest = slot.older;
    slot.older = slot.newer = undefined;
  }
}

const NON_ASCII = /[\u0080-\uffff]/;

/** Bytes of `text` in UTF-8, without encoding it. */
export function utf8Length(text: string): number {
  // Most keys and answers are ASCII: one native scan instead of a loop over every character.
  if (!NON_ASCII.test(text)) return text.length;
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
