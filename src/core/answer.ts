/**
 * The pipeline's typed answer: status, headers, a body (bytes, parsed JSON or a stream) and what produced it. The
 * stages build and pass these; the HTTP edge (`http/respond.ts`) turns one into a `Response` once, writing the
 * metadata as `x-llmproxy-*` headers there and nowhere else.
 */

/** What the cache did with a request. */
export type CacheVerdict = "HIT" | "MISS" | "BYPASS" | "COALESCED";

export type AnswerBody =
  /** A whole JSON answer from an upstream, checked by parsing it: the bytes as sent, their text, the value. */
  | {
    readonly kind: "json";
    readonly bytes: Uint8Array<ArrayBuffer>;
    readonly text: string;
    readonly parsed: unknown;
  }
  /** A whole body passed on as it is (a caller error, a cached or shared answer, a `/responses/{id}` answer). */
  | { readonly kind: "bytes"; readonly bytes: Uint8Array<ArrayBuffer> | string }
  /** A stream of server-sent events, pulled at the client's pace. */
  | { readonly kind: "stream"; readonly stream: ReadableStream<Uint8Array> };

export interface AnswerMeta {
  /** Id of the endpoint that produced the answer ("cache" for a cached answer of unknown origin). */
  readonly endpoint: string;
  /** Upstream attempts this request made (0 when the cache answered). */
  readonly attempts: number;
  /** The cache's verdict; null when no cache stage looked at the request. */
  readonly cache: CacheVerdict | null;
  /** Set when a Responses conversation was replayed on another endpoint than its owner. */
  readonly conversation?: "replayed";
}

export interface Answer {
  readonly status: number;
  /**
   * The answer's own headers as a plain record (the upstream's, hop-by-hop removed; or a cached answer's): a
   * Response validates a record once, where a `Headers` object is validated on every set.
   */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: AnswerBody;
  readonly meta: AnswerMeta;
}

/** The answer with some metadata changed (answers are never mutated: stages may still hold the old one). */
export function withMeta(answer: Answer, meta: Partial<AnswerMeta>): Answer {
  return { ...answer, meta: { ...answer.meta, ...meta } };
}
