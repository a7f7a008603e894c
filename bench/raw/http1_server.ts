/**
 * An HTTP/1.1 server engine in JavaScript, for one question of issue 22 (session 9): would the proxy cost less on
 * its own engine (`Deno.listen`, `conn.read`/`conn.write`, heads parsed and answers framed in JS) than on Deno's
 * (`serveHttpOnConnection`, hyper in Rust)? Answer: no on CPU, yes on memory; not adopted.
 *
 * Measured on a loaded 2-core VM (load 3-12), medians of interleaved rounds (/work/coord/notes/raw.md has all runs):
 * - the proxy itself, served by this engine through its web contract (src/serve/server.ts patched to call
 *   `serveRaw`, as the notes show) vs on Deno's: CPU per 50-chunk stream 1,867 vs 1,667 us (worse), first chunk
 *   1.45 vs 1.29 ms (worse), CPU per JSON request 224 vs 209 us (no better), peak RSS during 1,000 streams
 *   141 vs 178 MiB on the bundle (1.04x vs 1.31x the bare: much better), idle 46.9 vs 48.5 MiB.
 * - the stream floor (`bench/stream_floor.ts` on `Deno.serve` vs `raw/stream_floor.ts`): 1,267 vs 1,367 us per
 *   stream; the lean contract (`serveLean`, no web `Request`/`Response`; `raw/lean/`) 1,300 us. JSON
 *   (`minimal_gateway.ts` vs `raw/`, `raw/lean/`): 157 vs 220 vs 170 us per request.
 * - The hand-written loop that first read 0.93x (a quick hack) left TCP_NODELAY off: `Deno.listen`'s accepted
 *   sockets keep Nagle on (`Deno.serve` and `serveHttpOnConnection` turn it off), so its answer head waited for
 *   a delayed ACK before the first event; it also parsed no headers and built no web objects. With both done,
 *   the gain is gone: a `new Request` costs ~11 us hot and 0.1-0.2 ms cold, which Deno's engine builds lazily
 *   from Rust; each `conn.write` is an async op where Deno's drain hands chunks to Rust with a sync op.
 *
 * The engine does what a real one must on the hot path: head size and header count limits, token and value checks,
 * Content-Length (duplicates must agree; Transfer-Encoding in a request is refused, not decoded), keep-alive,
 * pipelined bytes kept, TCP_NODELAY, a `date` header, an answer sent with its length when whole or chunked as its
 * stream flows, and a client that leaves cancels the answer's body, then aborts the request's signal (in that
 * order: aborted first, the proxy saw its upstream call aborted mid-stream and cooled the endpoint). Not here:
 * chunked request bodies, upgrades, timeouts, connection limits, shutdown. Not for production.
 *
 *   deno run -A bench/stream_ab.ts --nginx --main bench/stream_floor.ts --main bench/raw/stream_floor.ts
 *   deno run -A bench/ab.ts --main bench/minimal_gateway.ts --main bench/raw/minimal_gateway.ts
 *   deno run -A bench/memory.ts --main bench/stream_floor.ts --main bench/raw/stream_floor.ts
 */

import {
  BadRequest,
  chunk,
  encoder,
  END,
  type Head,
  httpDate,
  latin1,
  MAX_HEAD_BYTES,
  parseHead,
  Wire,
  writeAll,
} from "./http1_wire.ts";

export interface RawInfo {
  readonly remoteAddr: Deno.NetAddr;
  readonly completed: Promise<void>;
}
export type RawHandler = (request: Request, info: RawInfo) => Response | Promise<Response>;

function headBytes(response: Response, framing: string, body?: Uint8Array): Uint8Array {
  let head = `HTTP/1.1 ${response.status} ${response.statusText || "OK"}\r\ndate: ${httpDate()}\r\n`;
  for (const [name, value] of response.headers) {
    if (name !== "content-length" && name !== "transfer-encoding") head += `${name}: ${value}\r\n`;
  }
  head += framing;
  if (!body) return encoder.encode(head);
  const out = new Uint8Array(head.length * 3 + body.length);
  const { written } = encoder.encodeInto(head, out);
  out.set(body, written);
  return out.subarray(0, written + body.length);
}

const PENDING: unique symbol = Symbol("pending");
type Read = ReadableStreamReadResult<Uint8Array>;

/**
 * A response's body when it was made from bytes or a string, read from the runtime's inner response (as
 * `Deno.serve` does natively) instead of through a stream; undefined for a stream or where the internal is missing.
 */
function staticBody(response: Response): Uint8Array | undefined {
  INNER ??= Object.getOwnPropertySymbols(response).find((symbol) => symbol.description === "response") ??
    null;
  const inner = INNER && (response as unknown as Record<symbol, { body?: InnerBody | null }>)[INNER];
  if (!inner) return undefined;
  if (!inner.body) return new Uint8Array();
  const source = inner.body.streamOrStatic;
  if (source instanceof ReadableStream || source.consumed) return undefined;
  return typeof source.body === "string" ? encoder.encode(source.body) : source.body;
}
interface InnerBody {
  streamOrStatic: ReadableStream | { body: Uint8Array | string; consumed: boolean };
}
let INNER: symbol | null | undefined;

/** Writes the answer: whole with a length when its body ends after one chunk, else chunked as it comes. */
async function writeAnswer(
  conn: Deno.Conn,
  response: Response,
  head: boolean,
  exchange: Exchange,
): Promise<void> {
  const whole = staticBody(response);
  if (whole) {
    const framing = `content-length: ${whole.length}\r\n\r\n`;
    return writeAll(conn, headBytes(response, framing, head ? undefined : whole));
  }
  const body = response.body;
  if (!body) return writeAll(conn, headBytes(response, "content-length: 0\r\n\r\n"));
  // Cancelled by the exchange when the client leaves or a write fails.
  const reader = exchange.reader = body.getReader();
  const first = await reader.read();
  const next = reader.read();
  const second: Read | typeof PENDING = await Promise.race<Read | typeof PENDING>([next, PENDING]);
  if (first.done || (second !== PENDING && second.done)) {
    exchange.reader = undefined;
    const bytes = first.done ? new Uint8Array() : first.value;
    const framing = `content-length: ${bytes.length}\r\n\r\n`;
    return await writeAll(conn, headBytes(response, framing, head ? undefined : bytes));
  }
  await writeAll(conn, headBytes(response, "transfer-encoding: chunked\r\n\r\n", chunk(first.value)));
  for (let read: Read = second === PENDING ? await next : second; !read.done; read = await reader.read()) {
    if (read.value.length > 0) await writeAll(conn, chunk(read.value));
  }
  exchange.reader = undefined;
  await writeAll(conn, END);
}

/**
 * One request's life on its connection: its signal, and the answer's body being written. A client that leaves
 * cancels that body first and then aborts the signal, as Deno's server does: the app sees its stream cancelled
 * (the client left), not its upstream call aborted mid-stream (which it would count against the endpoint).
 */
class Exchange {
  readonly #abort = new AbortController();
  readonly signal = this.#abort.signal;
  reader: ReadableStreamDefaultReader<Uint8Array> | undefined;

  gone(): void {
    this.reader?.cancel().catch(() => {});
    this.reader = undefined;
    this.#abort.abort();
  }
}

/** What a connection does with one parsed request: answers it (written on `conn`) and resolves when written. */
type Answer = (
  conn: Deno.Conn,
  head: Head,
  body: Uint8Array<ArrayBuffer> | undefined,
  exchange: Exchange,
) => Promise<void>;

async function serveConnection(conn: Deno.Conn, answer: Answer): Promise<void> {
  const wire = new Wire(conn);
  (conn as Deno.TcpConn).setNoDelay?.(true);
  for (;;) {
    let at = wire.headEnd(wire.start);
    while (at < 0) {
      if (wire.end - wire.start > MAX_HEAD_BYTES) throw new BadRequest();
      // A fill may move the buffered bytes to the buffer's start: what was scanned is kept relative to `start`.
      const scanned = Math.max(0, wire.end - 3 - wire.start);
      if (!await wire.fill()) return;
      at = wire.headEnd(wire.start + scanned);
    }
    const head = parseHead(latin1.decode(wire.buffer.subarray(wire.start, at)));
    wire.start = at + 4;
    let body: Uint8Array<ArrayBuffer> | undefined;
    if (head.length > 0) {
      while (wire.end - wire.start < head.length) if (!await wire.fill()) return;
      body = wire.buffer.slice(wire.start, wire.start + head.length);
      wire.start += head.length;
    }
    const exchange = new Exchange();
    // A read kept pending while the answer is made: the client's close ends the exchange; pipelined bytes stay.
    const watching = wire.fill().then((read) => {
      if (read === 0) exchange.gone();
    });
    try {
      await answer(conn, head, body, exchange);
    } catch (error) {
      exchange.gone();
      throw error;
    }
    if (head.close || exchange.signal.aborted) return;
    watching.catch(() => {});
  }
}

/** The web contract: a `Request` in, a `Response` out, as `Deno.serve` handlers. */
function webAnswer(handler: RawHandler): Answer {
  return async (conn, head, body, exchange) => {
    let finish!: () => void;
    const completed = new Promise<void>((resolve) => finish = resolve);
    const request = new Request(`http://${head.host || "localhost"}${head.target}`, {
      method: head.method,
      headers: head.headers,
      body,
      signal: exchange.signal,
    });
    try {
      const response = await handler(request, { remoteAddr: conn.remoteAddr as Deno.NetAddr, completed });
      await writeAnswer(conn, response, head.method === "HEAD", exchange);
    } finally {
      finish();
    }
  };
}

/** A request without the web objects: the parsed head's fields and the body's bytes. */
export interface LeanRequest {
  readonly method: string;
  readonly target: string;
  readonly headers: readonly [string, string][];
  readonly body: Uint8Array | undefined;
  readonly signal: AbortSignal;
}
/** An answer without the web objects: a body of bytes (sent with its length) or a stream (sent chunked). */
export interface LeanAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array | ReadableStream<Uint8Array>;
}
export type LeanHandler = (request: LeanRequest) => Promise<LeanAnswer>;

function leanHead(answer: LeanAnswer, framing: string): string {
  let head = `HTTP/1.1 ${answer.status} OK\r\ndate: ${httpDate()}\r\n`;
  for (const name in answer.headers) head += `${name}: ${answer.headers[name]}\r\n`;
  return head + framing;
}

/** The lean contract: what the web objects cost is what this saves over `webAnswer`. */
function leanAnswer(handler: LeanHandler): Answer {
  return async (conn, head, body, exchange) => {
    const answer = await handler({
      method: head.method,
      target: head.target,
      headers: head.headers,
      body,
      signal: exchange.signal,
    });
    if (answer.body instanceof Uint8Array) {
      const text = leanHead(answer, `content-length: ${answer.body.length}\r\n\r\n`);
      const out = new Uint8Array(text.length + answer.body.length);
      encoder.encodeInto(text, out);
      out.set(answer.body, text.length);
      return writeAll(conn, out);
    }
    const reader = exchange.reader = answer.body.getReader();
    await writeAll(conn, encoder.encode(leanHead(answer, "transfer-encoding: chunked\r\n\r\n")));
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      if (read.value.length > 0) await writeAll(conn, chunk(read.value));
    }
    exchange.reader = undefined;
    await writeAll(conn, END);
  };
}

function listen(hostname: string, port: number, answer: Answer): Deno.NetAddr {
  const listener = Deno.listen({ hostname, port });
  (async () => {
    for await (const conn of listener) {
      serveConnection(conn, answer).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch {
          // closed already
        }
      });
    }
  })();
  return listener.addr as Deno.NetAddr;
}

/** Serves `handler` (web contract) on `hostname:port` until the process ends. */
export function serveRaw(hostname: string, port: number, handler: RawHandler): Deno.NetAddr {
  return listen(hostname, port, webAnswer(handler));
}

/** Serves `handler` (lean contract) on `hostname:port` until the process ends. */
export function serveLean(hostname: string, port: number, handler: LeanHandler): Deno.NetAddr {
  return listen(hostname, port, leanAnswer(handler));
}
