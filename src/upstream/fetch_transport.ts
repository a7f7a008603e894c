/**
 * Upstream calls through Deno's fetch (`upstream_client: fetch`, and a body the caller hands over as a web stream),
 * their answers passed through the answer guard as the HTTP/1.1 client's are.
 */

import type { AnswerGuard } from "./answer_guard.ts";
import type { CallSignal } from "./call_signal.ts";
import type { Http1Init } from "./http1.ts";
import { RequestBodyFailed, type StreamedBody } from "./http1_chunked.ts";
import { headerPairs, type Reply, streamedReply } from "./reply.ts";

type FetchInit = Omit<RequestInit, "signal"> & { readonly signal: CallSignal };

/**
 * The content codings whose label does not reach the client: those Deno's fetch decodes (2.9: gzip and brotli,
 * not deflate nor zstd), whose `content-encoding` it keeps all the same although the bytes are decoded, and
 * `identity` (no coding). An answer in any other coding keeps its label, so the client can decode what it gets
 * (or know that it cannot).
 */
const UNLABELLED = /^\s*(gzip|br|identity)?\s*$/i;

/** Deno's fetch, its answer passed through the guard (fetch has decoded it already). */
export async function guardedFetch(
  url: string,
  init: FetchInit,
  guard: AnswerGuard | undefined,
): Promise<Reply> {
  const response = await fetch(url, { ...init, signal: init.signal.abortSignal(), redirect: "manual" });
  let headers = headerPairs(response.headers);
  const coding = response.headers.get("content-encoding");
  if (coding !== null && UNLABELLED.test(coding)) {
    headers = headers.filter(([name]) => name !== "content-encoding" && name !== "content-length");
  }
  const body = response.body as ReadableStream<Uint8Array<ArrayBuffer>> | null;
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
