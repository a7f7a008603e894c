/**
 * The client's body read chunk by chunk into one reused buffer (a BYOB reader: no new buffer per chunk, so a
 * 200 MB upload leaves no garbage behind it), or with a plain reader when the stream is not a byte stream.
 */

/**
 * Bytes each read asks for: 64 KiB and room for a chunk's framing. Deno's HTTP/1 server (2.9) reads the socket
 * once per body read, up to the size asked for, but hands back no more than what is left of the current chunk of
 * a chunked body; the rest waits in a buffer of the connection that has no bound. fetch (Deno's and Node's) sends
 * each piece of a streamed body as one chunk, 64 KiB from a file: a 64 KiB read returned 65,527 bytes and then
 * the 9 left, taking in 128 KiB for every 64 KiB handed over, so a reader slower than the client (the upstream
 * sets its pace) left half the upload in that buffer (+64 MB of RSS for 200 MB). 64 bytes more and one read takes
 * a whole 64 KiB chunk with its framing. A body with a content-length comes in full reads either way. Smaller
 * chunks still pile up there (see the README's uploads section).
 */
const CHUNK_BYTES = 64 * 1024 + 64;

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
