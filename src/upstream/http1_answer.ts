/**
 * The reply (`reply.ts`) to an upstream answer read by the proxy's HTTP/1.1 client (`http1.ts`): its head's
 * headers masked by the guard, and its body as bytes, a stream read off the connection, or decoded.
 */

import type { AnswerGuard } from "./answer_guard.ts";
import type { BodySource } from "./body_source.ts";
import { type Head, UpstreamProtocolError } from "./http1_wire.ts";
import { type Reply, SourcedReply, streamedReply, wholeReply } from "./reply.ts";

/** The content codings decoded here, by their `DecompressionStream` format. */
const FORMATS: Readonly<Record<string, CompressionFormat>> = {
  gzip: "gzip",
  "x-gzip": "gzip",
  deflate: "deflate",
  br: "brotli",
};

/**
 * Whether the answer's body is in a content coding (decoded by `answer`, so guarded after decoding there; one it
 * cannot decode fails the answer there).
 */
export function isCompressed(head: Head): boolean {
  const coding = head.contentEncoding;
  return coding !== undefined && coding !== "identity" && coding !== "";
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
  if (isCompressed(head)) {
    // Asked for identity; a server that compresses anyway is decoded here, as fetch would. A coding that cannot be
    // (zstd, two codings) fails the answer: with `content-encoding` dropped on the way, its bytes would reach the
    // client as if they were plain (a corrupt file or audio, a JSON answer that does not parse).
    const format = FORMATS[head.contentEncoding!];
    if (format === undefined) {
      if (!(body instanceof Uint8Array)) body.cancel();
      throw new UpstreamProtocolError("unsupported content coding from the upstream");
    }
    const source = body instanceof Uint8Array ? new Response(body).body! : body.stream();
    const plain = headers.filter(([name]) => name !== "content-encoding" && name !== "content-length");
    const decoded = source.pipeThrough(
      new DecompressionStream(format) as TransformStream<Uint8Array, Uint8Array<ArrayBuffer>>,
    );
    return streamedReply(status, statusText, plain, guard ? decoded.pipeThrough(guard.transform()) : decoded);
  }
  // `identity` (or empty) says nothing; dropped, so the client's answer is no different from one without it.
  const plain = head.contentEncoding === undefined
    ? headers
    : headers.filter(([name]) => name !== "content-encoding");
  return body instanceof Uint8Array
    ? wholeReply(status, statusText, plain, body)
    : new SourcedReply(status, statusText, plain, body);
}
