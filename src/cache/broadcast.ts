/**
 * One stream, many readers, each at its own pace: how identical streamed requests share one upstream answer.
 * Every reader starts at the first byte (a reader that joins late gets what was already sent at once, then
 * the live tail). The source is read only when some reader wants a chunk nobody has yet, so it runs at the
 * pace of the fastest reader, never ahead of all of them; a slow reader only falls behind.
 *
 * Bounded: chunks are kept (to serve late joiners) up to `maxBytes`. Past that nobody may join any more,
 * chunks every reader has passed are dropped, and the fastest reader waits while the slowest is more than
 * `maxBytes` behind. When the last reader leaves before the end, the source is cancelled (which cancels the
 * upstream).
 *
 * Each reader is a pass-through of `proxy/tap.ts` (polled, not pulled: a reader that keeps up takes every chunk at
 * hand in one flow, with no promise per chunk), and the source is polled the same way where it can be (the cache's
 * recorder over the upstream's body). What is kept for late joiners is copied into blocks of this broadcast's own
 * (an upstream chunk is a view of a slab shared with other streams: a view kept would keep the whole slab), a few
 * growing blocks per stream instead of a buffer of its own per chunk.
 */

import { type ChunkReader, pollReader } from "../proxy/chunks.ts";
import { type PipeSource, pipeStream } from "../proxy/tap.ts";

export type BroadcastEnd = "done" | "failed" | "abandoned";

export interface BroadcastOptions {
  readonly maxBytes: number;
  /** Called once when the source ended, failed, or was cancelled because every reader left. */
  readonly onEnd?: (end: BroadcastEnd) => void;
}

/** The first block that kept chunks are copied into; each next one is twice as large, up to `MAX_BLOCK`. */
const FIRST_BLOCK = 1024;
const MAX_BLOCK = 64 * 1024;

export class Broadcast {
  readonly #source: ChunkReader;
  readonly #maxBytes: number;
  readonly #onEnd: (end: BroadcastEnd) => void;
  readonly #readers = new Set<BroadcastReader>();
  #chunks: Uint8Array[] = [];
  /** Absolute index of `#chunks[0]`. */
  #first = 0;
  #kept = 0;
  #total = 0;
  #joinable = true;
  #end: BroadcastEnd | null = null;
  #failure: unknown = undefined;
  /** A `wait` on the source is out. */
  #reading = false;
  /**
   * Readers' `then`s, told when a chunk came, the source ended, or room was made: the first, then any others (one
   * reader, the usual case, makes no array per event).
   */
  #waiter: (() => void) | undefined;
  #waiters: (() => void)[] | undefined;
  /** The block kept chunks are copied into, and how much of it is used. */
  #block: Uint8Array | undefined;
  #used = 0;
  #ended!: (end: BroadcastEnd) => void;
  /** What the source's `wait` calls back: one function for the broadcast, not a closure per wait. */
  readonly #read = () => {
    this.#reading = false;
    this.#wake();
  };
  /** Settles once the source ended, failed, or was cancelled because every reader left. */
  readonly ended: Promise<BroadcastEnd> = new Promise((resolve) => this.#ended = resolve);

  constructor(source: ReadableStream<Uint8Array>, options: BroadcastOptions) {
    this.#source = pollReader(source);
    this.#maxBytes = options.maxBytes;
    this.#onEnd = options.onEnd ?? (() => {});
  }

  /** Whether a new reader could still start from the first byte. */
  get joinable(): boolean {
    return this.#joinable && this.#end !== "failed" && this.#end !== "abandoned";
  }

  /** A new reader from the first byte, or null when it is too late to join. */
  join(): ReadableStream<Uint8Array> | null {
    if (!this.joinable) return null;
    const reader = new BroadcastReader(this);
    this.#readers.add(reader);
    return pipeStream(reader);
  }

  /** `reader`'s next chunk, null at the end, undefined when it must wait; throws the source's failure. */
  next(reader: BroadcastReader): Uint8Array | null | undefined {
    const index = reader.position - this.#first;
    if (index < this.#chunks.length) {
      reader.position++;
      const chunk = this.#chunks[index];
      this.#trim();
      return chunk;
    }
    if (this.#end === null && !this.#reading && this.#kept <= this.#maxBytes) this.#poll();
    if (index < this.#chunks.length) return this.next(reader);
    if (this.#end === "failed") {
      this.leave(reader);
      throw this.#failure;
    }
    if (this.#end !== null) {
      this.leave(reader);
      return null;
    }
    return undefined;
  }

  /** Calls `then` once `reader` may have more to take: a chunk came, the source ended, or room was made. */
  wait(reader: BroadcastReader, then: () => void): void {
    if (this.#end !== null || reader.position - this.#first < this.#chunks.length) {
      queueMicrotask(then);
      return;
    }
    if (this.#waiter === undefined) this.#waiter = then;
    else (this.#waiters ??= []).push(then);
    if (this.#reading || this.#kept > this.#maxBytes) return;
    this.#reading = true;
    this.#source.wait(this.#read);
  }

  /** `reader` left (it ended, or its client cancelled): the last to leave before the end cancels the source. */
  leave(reader: BroadcastReader): void {
    if (!this.#readers.delete(reader)) return;
    if (this.#readers.size === 0 && this.#end === null) {
      this.#joinable = false;
      this.#finish("abandoned");
      this.#source.cancel().catch(() => {});
      return;
    }
    this.#trim();
  }

  /** Takes what the source has at hand: one chunk, its end, or its failure. */
  #poll(): void {
    let chunk: Uint8Array | null | undefined;
    try {
      chunk = this.#source.poll();
    } catch (error) {
      this.#failure = error ?? new Error("stream failed");
      return this.#finish("failed");
    }
    if (chunk === undefined) return;
    if (chunk === null) return this.#finish("done");
    this.#chunks.push(this.#copy(chunk));
    this.#kept += chunk.byteLength;
    this.#total += chunk.byteLength;
    if (this.#total > this.#maxBytes) this.#joinable = false;
    this.#trim();
    // Readers waiting meanwhile (their `wait` came before this poll) have it to take now.
    if (this.#waiter !== undefined) this.#wake();
  }

  /** `chunk` copied into this broadcast's current block (a new one when it does not fit). */
  #copy(chunk: Uint8Array): Uint8Array {
    const length = chunk.byteLength;
    let block = this.#block;
    if (block === undefined || this.#used + length > block.byteLength) {
      const size = block === undefined ? FIRST_BLOCK : Math.min(block.byteLength * 2, MAX_BLOCK);
      block = this.#block = new Uint8Array(Math.max(size, length));
      this.#used = 0;
    }
    const at = this.#used;
    block.set(chunk, at);
    this.#used = at + length;
    return new Uint8Array(block.buffer, at, length);
  }

  /** Drops chunks every reader has passed, once late joiners are no longer served. */
  #trim(): void {
    if (this.#joinable) return;
    let lowest = Infinity;
    for (const reader of this.#readers) lowest = Math.min(lowest, reader.position);
    if (lowest === Infinity) lowest = this.#first + this.#chunks.length;
    const drop = lowest - this.#first;
    if (drop <= 0) return;
    for (let i = 0; i < drop; i++) this.#kept -= this.#chunks[i].byteLength;
    this.#chunks = this.#chunks.slice(drop);
    this.#first = lowest;
    if (this.#kept <= this.#maxBytes) this.#wake();
  }

  #finish(end: BroadcastEnd): void {
    if (this.#end !== null) return;
    this.#end = end;
    this.#block = undefined;
    this.#ended(end);
    this.#wake();
    try {
      this.#onEnd(end);
    } catch {
      // a failing observer must not break the readers
    }
  }

  #wake(): void {
    const first = this.#waiter;
    const others = this.#waiters;
    this.#waiter = this.#waiters = undefined;
    first?.();
    if (others !== undefined) { for (const then of others) then(); }
  }
}

/** One reader of a broadcast: where it is, and the pass-through's source over it. */
class BroadcastReader implements PipeSource {
  /** Absolute index of the next chunk this reader gets. */
  position = 0;

  constructor(private readonly broadcast: Broadcast) {}

  poll(): Uint8Array | null | undefined {
    return this.broadcast.next(this);
  }

  wait(then: () => void): void {
    this.broadcast.wait(this, then);
  }

  cancel(): Promise<void> {
    this.broadcast.leave(this);
    return Promise.resolve();
  }
}
