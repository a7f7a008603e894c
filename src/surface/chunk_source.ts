/**
 * The client's body read chunk by chunk into one reused buffer (a BYOB reader: no new buffer per chunk, so a
 * 200 MB upload leaves no garbage behind it), or with a plain reader when the stream is not a byte stream.
 */

/** Bytes each read asks for. */
const CHUNK_BYTES = 64 * 1024;

export class ChunkSource {
  readonly #byob?: ReadableStreamBYOBReader;
  readonly #plain?: ReadableStreamDefaultReader<Uint8Array>;
  #buffer: ArrayBuffer = new ArrayBuffer(CHUNK_BYTES);

  constructor(body: ReadableStream<Uint8Array>) {
    try {
      this.#byob = body.getReader({ mode: "byob" });
    } catch {
      this.#plain = body.getReader();
    }
  }

  /** True when a chunk is overwritten by the next read: keep a copy to hold it longer. */
  get reuses(): boolean {
    return this.#byob !== undefined;
  }

  /** The next chunk, null at the end. With `reuses`, it is valid only until the next call. */
  async read(): Promise<Uint8Array | null> {
    if (!this.#byob) {
      const { done, value } = await this.#plain!.read();
      return done ? null : value;
    }
    const { done, value } = await this.#byob.read(new Uint8Array(this.#buffer));
    if (value) this.#buffer = value.buffer as ArrayBuffer;
    return done || !value ? null : value;
  }

  async cancel(reason?: unknown): Promise<void> {
    await (this.#byob ?? this.#plain)!.cancel(reason).catch(() => {});
  }
}
