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
 */

export type BroadcastEnd = "done" | "failed" | "abandoned";

export interface BroadcastOptions {
  readonly maxBytes: number;
  /** Called once when the source ended, failed, or was cancelled because every reader left. */
  readonly onEnd?: (end: BroadcastEnd) => void;
}

interface Cursor {
  /** Absolute index of the next chunk this reader gets. */
  position: number;
}

export class Broadcast {
  readonly #source: ReadableStreamDefaultReader<Uint8Array>;
  readonly #maxBytes: number;
  readonly #onEnd: (end: BroadcastEnd) => void;
  readonly #cursors = new Set<Cursor>();
  #chunks: Uint8Array[] = [];
  /** Absolute index of `#chunks[0]`. */
  #first = 0;
  #kept = 0;
  #total = 0;
  #joinable = true;
  #end: BroadcastEnd | null = null;
  #failure: unknown = undefined;
  #reading: Promise<void> | null = null;
  #roomWaiters: (() => void)[] = [];
  #ended!: (end: BroadcastEnd) => void;
  /** Settles once the source ended, failed, or was cancelled because every reader left. */
  readonly ended: Promise<BroadcastEnd> = new Promise((resolve) => this.#ended = resolve);

  constructor(source: ReadableStream<Uint8Array>, options: BroadcastOptions) {
    this.#source = source.getReader();
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
    const cursor: Cursor = { position: 0 };
    this.#cursors.add(cursor);
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        while (true) {
          const index = cursor.position - this.#first;
          if (index < this.#chunks.length) {
            const chunk = this.#chunks[index];
            cursor.position++;
            this.#trim();
            controller.enqueue(chunk);
            return;
          }
          if (this.#end === "failed") {
            this.#leave(cursor);
            return controller.error(this.#failure);
          }
          if (this.#end !== null) {
            this.#leave(cursor);
            return controller.close();
          }
          await this.#more();
        }
      },
      cancel: () => this.#leave(cursor),
    }, { highWaterMark: 0 });
  }

  /** One more chunk from the source (shared by every reader waiting for it). */
  #more(): Promise<void> {
    this.#reading ??= this.#read().finally(() => this.#reading = null);
    return this.#reading;
  }

  async #read(): Promise<void> {
    while (this.#kept > this.#maxBytes && this.#end === null) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
    if (this.#end !== null) return;
    try {
      const { done, value } = await this.#source.read();
      if (this.#end !== null) return;
      if (done) return this.#finish("done");
      // What is kept for late joiners is kept at its own size: a view of a larger buffer (an upstream chunk carved
      // out of a shared slab, upstream/chunk_slab.ts) would keep all of that buffer.
      this.#chunks.push(value.byteLength < value.buffer.byteLength ? value.slice() : value);
      this.#kept += value.byteLength;
      this.#total += value.byteLength;
      if (this.#total > this.#maxBytes) this.#joinable = false;
      this.#trim();
    } catch (error) {
      this.#failure = error ?? new Error("stream failed");
      this.#finish("failed");
    }
  }

  /** Drops chunks every reader has passed, once late joiners are no longer served. */
  #trim(): void {
    if (this.#joinable) return;
    let lowest = Infinity;
    for (const cursor of this.#cursors) lowest = Math.min(lowest, cursor.position);
    if (lowest === Infinity) lowest = this.#first + this.#chunks.length;
    const drop = lowest - this.#first;
    if (drop <= 0) return;
    for (let i = 0; i < drop; i++) this.#kept -= this.#chunks[i].byteLength;
    this.#chunks = this.#chunks.slice(drop);
    this.#first = lowest;
    if (this.#kept <= this.#maxBytes) this.#wake();
  }

  #leave(cursor: Cursor): void {
    if (!this.#cursors.delete(cursor)) return;
    if (this.#cursors.size === 0 && this.#end === null) {
      this.#joinable = false;
      this.#finish("abandoned");
      this.#source.cancel().catch(() => {});
      return;
    }
    this.#trim();
  }

  #finish(end: BroadcastEnd): void {
    if (this.#end !== null) return;
    this.#end = end;
    this.#ended(end);
    this.#wake();
    try {
      this.#onEnd(end);
    } catch {
      // a failing observer must not break the readers
    }
  }

  #wake(): void {
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
