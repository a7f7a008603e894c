/**
 * Upstream calls through Deno's fetch (`upstream_client: fetch`, and a body the caller hands over as a web stream),
 * their answers passed through the answer guard as the HTTP/1.1 client's are.
 */

import type { AnswerGuard } from "./answer_guard.ts";
import type { CallSignal } from "./call_signal.ts";
import type { Http1Init } from "./http1.ts";
import { RequestBodyFailed, type StreamedBody } from "./http1_chunked.ts";
import { UpstreamProtocolError } from "./http1_wire.ts";
import { headerPairs, type Reply, streamedReply } from "./reply.ts";

type FetchInit = Omit<RequestInit, "signal"> & { readonly signal: CallSignal };

/**
 * The content codings Deno's fetch decodes (2.9: gzip and brotli), whose `content-encoding` it keeps although the
 * bytes are decoded, and `identity` (no coding): their label does not reach the client.
 */
const DECODED = /^\s*(gzip|br|identity)?\s*$/i;

/** Deno's fetch, its answer passed through the guard (fetch has decoded it already). */
export async function guardedFetch(
  url: string,
  init: FetchInit,
  guard: AnswerGuard | undefined,
): Promise<Reply> {
  const response = await fetch(url, { ...init, signal: init.signal.abortSignal(), redirect: "manual" });
  let headers = headerPairs(response.headers);
  let body = response.body as ReadableStream<Uint8Array<ArrayBuffer>> | null;
  const coding = response.headers.get("content-encoding");
  if (coding !== null) {
    // Deflate is decoded here, as the HTTP/1.1 client does; a coding neither can decode (zstd, two codings) fails
    // the answer, as there: passed on, its bytes would escape the guard's masking of the endpoint's key, and the
    // proxy's own reading (an event stream's, a JSON answer's) would see compressed bytes.
    const deflate = /^\s*deflate\s*$/i.test(coding);
    if (!deflate && !DECODED.test(coding)) {
      await body?.cancel().catch(() => {});
      throw new UpstreamProtocolError("unsupported content coding from the upstream");
    }
    headers = headers.filter(([name]) => name !== "content-encoding" && name !== "content-length");
    if (deflate && body) {
      body = body.pipeThrough(
        new DecompressionStream("deflate") as TransformStream<Uint8Array, Uint8Array<ArrayBuffer>>,
      );
    }
  }
  return guard
    ? streamedReply(
      response.status,
      response.statusText,
      guard.headers(headers),
      body?.pipeThrough(guard.transform()) ?? null,
    )
    : streamedReply(response.status, response.statusText, headers, body);
}

/** A call with a body given whole (or none). */
export const fetchWhole = (url: string, { guard, ...init }: Http1Init & { readonly signal: CallSignal }) =>
  guardedFetch(url, init, guard);

/**
 * A body of chunks that may share one buffer: fetch may hold them longer than the next read, so it gets copies.
 * When the body fails (its client left), the call fails with `RequestBodyFailed`, not as a broken connection.
 */
export function fetchStreamed(
  url: string,
  init: Http1Init & { readonly body: StreamedBody; readonly signal: CallSignal },
): Promise<Reply> {
  const { guard, body, ...rest } = init;
  let failed: RequestBodyFailed | undefined;
  const copies = ReadableStream.from((async function* () {
    try {
      for await (const chunk of body) yield chunk.slice();
    } catch (error) {
      throw failed = new RequestBodyFailed(error);
    }
  })());
  return guardedFetch(url, { ...rest, body: copies }, guard).catch((error) => {
    throw failed ?? error;
  });
}
