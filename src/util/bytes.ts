/** Byte helpers shared by the readers that gather a body or a stream's pieces. */

/** `chunks` copied one after another into one new buffer of `length` bytes (their total length). */
export function joinBytes(chunks: readonly Uint8Array[], length: number): Uint8Array<ArrayBuffer> {
  const joined = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    joined.set(chunk, at);
    at += chunk.byteLength;
  }
  return joined;
}
