/**
 * An upstream's answer as the proxy reads it: status, header pairs and body, without a web `Response`. The proxy
 * reads an answer's headers once, into the record its client's answer is built from; a `Response` would first
 * validate and copy every header into a `Headers` list, and then sort and combine them again to be read (about
 * 10 us per answer on the bench machine, most of what the proxy's own HTTP/1.1 client saves over fetch).
 */

import { type BodySource, type ChunkSource, waitFor } from "./body_source.ts";
import { joinBytes } from "../util/bytes.ts";

export interface Reply {
  readonly status: number;
  readonly statusText: string;
  /** Header pairs in the order received: lower-case names, values trimmed, the request's secrets masked. */
  readonly headers: readonly (readonly [string, string])[];
  /** Null when the answer has none. */
  readonly body: ReadableStream<Uint8Array<ArrayBuffer>> | null;
  /**
   * The body's chunks without its stream, where the client can give them (the HTTP/1.1 client's streamed bodies):
   * the stream is then made only if `body` is asked for. Read one or the other, never both.
   */
  readonly source?: BodySource;
  /** The whole body (empty when none), read from `body` when it is a stream. */
  bytes(): Promise<Uint8Array<ArrayBuffer>>;
  /** The whole body when it is at hand (it came with the head) and `body` was not asked for: no promise to wait. */
  readonly whole?: Uint8Array<ArrayBuffer>;
}

const EMPTY = new Uint8Array(0);

/** A reply whose body arrived whole (or that has none). */
export function wholeReply(
  status: number,
  statusText: string,
  headers: readonly (readonly [string, string])[],
  bytes: Uint8Array<ArrayBuffer> | null,
): Reply {
  let body: ReadableStream<Uint8Array<ArrayBuffer>> | null | undefined;
  return {
    status,
    statusText,
    headers,
    // Made only if someone asks for a stream (a pass-through body): most whole bodies are read as bytes.
    get body() {
      return body ??= bytes === null
        ? null
        : new Response(bytes).body as ReadableStream<Uint8Array<ArrayBuffer>>;
    },
    bytes: () => Promise.resolve(body === undefined ? bytes ?? EMPTY : readAll(body)),
    get whole() {
      return body === undefined ? bytes ?? EMPTY : undefined;
    },
  };
}

/** A reply whose body is a stream (or that has none). */
export function streamedReply(
  status: number,
  statusText: string,
  headers: readonly (readonly [string, string])[],
  body: ReadableStream<Uint8Array<ArrayBuffer>> | null,
): Reply {
  return { status, statusText, headers, body, bytes: () => readAll(body) };
}

/**
 * A reply whose body is read off a source that makes its stream only when `body` is asked for. A class: its
 * getter and method are shared, where an object literal would make two closures per reply.
 */
export class SourcedReply implements Reply {
  #body: ReadableStream<Uint8Array<ArrayBuffer>> | undefined;

  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly headers: readonly (readonly [string, string])[],
    readonly source: BodySource & { stream(): ReadableStream<Uint8Array<ArrayBuffer>> },
  ) {}

  get body(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.#body ??= this.source.stream();
  }

  /** Read off the source when nobody asked for the stream: no stream, reader or promise per chunk at hand. */
  bytes(): Promise<Uint8Array<ArrayBuffer>> {
    return this.#body ? readAll(this.#body) : readSourceAll(this.source);
  }
}

/**
 * Reads a source to its end into one buffer. A JSON answer whose head and body arrive in two reads (a server that
 * writes them apart, as Deno's does, at one connection nearly always) is read here rather than through a web
 * stream (its pull, a reader and its release: about 5 us per answer on the bench machine).
 */
export async function readSourceAll(source: ChunkSource): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const chunk = source.poll();
    if (chunk === null) break;
    if (chunk === undefined) await waitFor(source);
    else {
      chunks.push(chunk);
      length += chunk.length;
    }
  }
  return joinBytes(chunks, length);
}

/** Reads a stream to its end into one buffer. */
export async function readAll(stream: ReadableStream<Uint8Array> | null): Promise<Uint8Array<ArrayBuffer>> {
  if (!stream) return EMPTY;
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    length += chunk.length;
  }
  return joinBytes(chunks, length);
}

/** The header pairs of a web `Headers` (as it lists them: sorted, repeated names combined). */
export function headerPairs(headers: Headers): [string, string][] {
  const pairs: [string, string][] = [];
  headers.forEach((value, name) => pairs.push([name, value]));
  return pairs;
}

/** The reply as a web `Response` (for callers that want one). */
export function toResponse(reply: Reply): Response {
  const { status, statusText } = reply;
  return new Response(reply.body, { status, statusText, headers: reply.headers as [string, string][] });
}
