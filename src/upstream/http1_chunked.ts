/**
 * A request body sent as it comes, with chunked transfer coding: each chunk is written out before the next one is
 * asked for, so the source may read every chunk into the same buffer (an upload passes through the proxy without
 * a new buffer per chunk, and so without garbage that only a late GC returns).
 */

import type { Connection } from "./http1_connection.ts";

/** A request body as chunks; a chunk may be overwritten once the next one is asked for. */
export type StreamedBody = AsyncIterable<Uint8Array>;

const CRLF = new Uint8Array([13, 10]);
const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");
const encoder = new TextEncoder();

/**
 * The body failed, not the connection: what reading the client's upload threw (its client went away) is `cause`.
 * The attempt is then not the endpoint's failure. `writeChunked` rejects with it.
 */
export class RequestBodyFailed extends Error {
  constructor(cause: unknown) {
    super("the request body failed", { cause });
  }
}

/** Writes the head, then each chunk framed (`size CRLF data CRLF`), then the last chunk. */
export async function writeChunked(
  connection: Connection,
  head: Uint8Array | readonly Uint8Array[],
  body: StreamedBody,
): Promise<void> {
  connection.streamed = true;
  await connection.write(head);
  const chunks = body[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Uint8Array>;
    try {
      next = await chunks.next();
    } catch (error) {
      throw new RequestBodyFailed(error);
    }
    if (next.done) break;
    const chunk = next.value;
    if (chunk.length === 0) continue;
    await connection.write(encoder.encode(`${chunk.length.toString(16)}\r\n`));
    await connection.write(chunk);
    await connection.write(CRLF);
  }
  await connection.write(LAST_CHUNK);
}

/** Writes a request: its bytes as built, or its head and then its chunks. */
export function writeRequest(
  connection: Connection,
  message: Uint8Array | readonly Uint8Array[],
  body: string | StreamedBody | undefined,
): Promise<void> {
  return typeof body === "object" ? writeChunked(connection, message, body) : connection.write(message);
}
