/**
 * The reply (`reply.ts`) to an upstream answer read by the proxy's HTTP/1.1 client (`http1.ts`): its head's
 * headers masked by the guard, and its body as bytes, a stream read off the connection, or decoded.
 */

import type { AnswerGuard } from "./answer_guard.ts";
import type { BodySource } from "./body_source.ts";
import type { Head } from "./http1_wire.ts";
import { type Reply, SourcedReply, streamedReply, wholeReply } from "./reply.ts";

/** Whether the answer's body is compressed (decoded by `answer`, so guarded after decoding there). */
export function isCompressed(head: Head): boolean {
  const coding = head.contentEncoding;
  return coding === "gzip" || coding === "x-gzip" || coding === "deflate";
}

/** A body still to be read off the connection (`http1_body.ts`): chunk by chunk, or as a stream. */
export type StreamedAnswer = BodySource & { stream(): ReadableStream<Uint8Array<ArrayBuffer>> };

/**
 * The answer as a reply. The guard masks the header values; a plain body has been guarded by the caller as it was
 * read, a compressed one is guarded here after decoding (its cap counts decoded bytes).
 */
export function answer(
  head: Head,
  body: Uint8Array<ArrayBuffer> | StreamedAnswer | null,
  guard?: AnswerGuard,
): Reply {
  const { status, statusText } = head;
  const headers = guard ? guard.headers(head.headers) : head.headers;
  if (body === null || status === 205) {
    // A 205 has no content by definition: whatever framing it came with is dropped with its connection.
    if (body !== null && !(body instanceof Uint8Array)) body.cancel();
    return wholeReply(status, statusText, headers, null);
  }
  const coding = head.contentEncoding;
  if (isCompressed(head)) {
    // Asked for identity; a server that compresses anyway is decoded here, as fetch would.
    const source = body instanceof Uint8Array ? new Response(body).body! : body.stream();
    const plain = headers.filter(([name]) => name !== "content-encoding" && name !== "content-length");
    const format = coding === "deflate" ? "deflate" : "gzip";
    const decoded = source.pipeThrough(
      new DecompressionStream(format) as TransformStream<Uint8Array, Uint8Array<ArrayBuffer>>,
    );
    return streamedReply(status, statusText, plain, guard ? decoded.pipeThrough(guard.transform()) : decoded);
  }
  return body instanceof Uint8Array
    ? wholeReply(status, statusText, headers, body)
    : new SourcedReply(status, statusText, headers, body);
}
