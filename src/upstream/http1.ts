/**
 * The proxy's own HTTP/1.1 client for upstream calls: keep-alive connections per origin over `Deno.connect` or
 * `Deno.connectTls`, one write per request, the answer's head parsed here and its body framed by length, by
 * chunks or by the connection's close.
 *
 * Why not `fetch`: on this project's 2-core VM a gateway calling its upstream through Deno's fetch spent about
 * twice the CPU per request of the same gateway on this client (bench/RESULTS.md, session 4). Every request then
 * pays for a `Request`, a dependent abort signal, header validation in two layers and a hand-off to hyper's pool,
 * where this client writes one buffer and reads one. What it gives up is listed in the README: no HTTP/2 and no
 * `HTTP(S)_PROXY`; `general_settings.upstream_client: fetch` brings them back (and is chosen by itself when a proxy
 * variable is set). Its attempts are traced by the proxy itself (src/telemetry/).
 *
 * The answer is a web `Response`, as from fetch: a body that arrived whole with its head is handed over as bytes
 * (the connection goes straight back to the pool); anything longer is a stream that reads the socket as the
 * consumer pulls (`http1_body.ts`), so SSE events pass one by one. Aborting the signal closes the connection: a
 * pending `fetch` rejects, and a body being read errors, with the signal's reason.
 */

import { RequestBodyFailed, type StreamedBody, writeRequest } from "./http1_chunked.ts";
import { BodyReader } from "./http1_body.ts";
import { Connection } from "./http1_connection.ts";
import { IdlePool } from "./http1_pool.ts";
import { readHead } from "./http1_head.ts";
import { ProxyError } from "../errors.ts";
import type { AnswerGuard } from "./answer_guard.ts";
import { maybeSent, openSocket } from "./http1_connect.ts";
import { answer, isCompressed } from "./http1_answer.ts";
import { bodyFraming, type Head, requestBytes, type Target, targetOf } from "./http1_wire.ts";
import { type Reply, toResponse } from "./reply.ts";
import type { AbortLike } from "../core/abort_like.ts";
export { UpstreamProtocolError } from "./http1_wire.ts";

export interface Http1Init {
  readonly method: string;
  /** Lower-case names. `host`, `content-length` and `connection` are set here. */
  readonly headers: Readonly<Record<string, string>>;
  /** A string, or chunks (`http1_chunked.ts`): those take a new connection, never retried nor reused. */
  readonly body?: string | StreamedBody;
  readonly signal: AbortLike;
  /** Caps the answer's size and masks the request's credentials in it. */
  readonly guard?: AnswerGuard;
  /**
   * The request makes something upstream each time it is received (creating a batch): it goes on a new connection,
   * never a kept-alive one, so it is never sent a second time (see `request`).
   */
  readonly once?: boolean;
}

export interface Http1Options {
  /** An idle connection older than this is closed rather than reused. Default 30 s. */
  readonly idleMs?: number;
  /** An ended answer's connection is kept for reuse only while at most this many are open. Default 1,024. */
  readonly maxOpen?: number;
  /** Extra root certificates (PEM) for TLS upstreams, for tests with a self-signed one. */
  readonly caCerts?: string[];
  /** How long a new connection (TCP and TLS handshakes) may take. Default 10 s. */
  readonly connectTimeoutMs?: number;
}

export class Http1Agent {
  readonly #caCerts?: string[];
  /** Settable: a config reload changes it for the connections opened after. */
  connectTimeoutMs: number;
  /** Settable: connections open (in use and parked, all origins) beyond which an ended answer's is closed. */
  maxOpen: number;
  readonly #pool: IdlePool;
  readonly #targets = new Map<string, Target>();
  #shut = false;
  #opened = 0;
  #closed = 0;
  readonly #onClosed = () => void this.#closed++;

  constructor(options: Http1Options = {}) {
    this.#pool = new IdlePool(options.idleMs ?? 30_000);
    this.maxOpen = options.maxOpen ?? 1024;
    this.#caCerts = options.caCerts;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  }

  /** Connections opened so far. */
  get connectionsOpened(): number {
    return this.#opened;
  }

  /** Connections parked for reuse now. */
  get idleConnections(): number {
    return this.#pool.size;
  }

  /** Sends one request; resolves with the answer as a web `Response` once its head has arrived. */
  readonly fetch = async (url: string, init: Http1Init): Promise<Response> =>
    toResponse(await this.request(url, init));

  /**
   * Sends one request; resolves with the answer once its head has arrived. Not async: a request on a kept-alive
   * connection waits in the exchange alone.
   */
  readonly request = (url: string, init: Http1Init): Promise<Reply> => {
    let target: Target, message: Uint8Array | readonly Uint8Array[];
    const streamed = typeof init.body === "object";
    try {
      init.signal.throwIfAborted();
      target = this.#target(url);
      message = requestBytes(init.method, target.start, init.headers, streamed ? "chunked" : init.body);
    } catch (error) {
      return Promise.reject(error);
    }
    const reused = streamed || init.once ? undefined : this.#pool.take(target.origin);
    if (!reused) return this.#onNewConnection(target, message, init);
    return this.#exchange(reused, message, init, true).catch((error) => {
      reused.close();
      if (init.signal.aborted) throw init.signal.reason;
      // The server's idle timeout crossed the request: it says so (408) and closes; it did not take the request.
      if (error === CLOSED_IDLE) return this.#onNewConnection(target, message, init);
      // A kept-alive connection that the server closed as it was taken (or just after the request went out on it)
      // fails before any byte of an answer: the request goes once more, on a new connection (never one from the
      // pool, which may hold more that the server closed). A server that closes an idle connection does so without
      // reading what arrived on it, so even a POST is sent again: a generation request would otherwise fail over
      // to another endpoint (sent again all the same) and count a healthy one as failing. But the server may also
      // have read it and closed before answering: a request that makes something each time it is received (`once`:
      // creating a batch) never comes here, it takes a new connection (one a server's idle timeout cannot have
      // closed), and a failure of that is not resent. Uploads stream, which takes a new connection too.
      // The server may have taken it before the connection failed: a resend that cannot connect is "maybe sent",
      // not "never sent" (an upload would move on to another endpoint, a possible duplicate file).
      if (!reused.answered && !(error instanceof ProxyError)) {
        return this.#onNewConnection(target, message, init).catch(maybeSent);
      }
      throw error;
    });
  };

  async #onNewConnection(
    target: Target,
    message: Uint8Array | readonly Uint8Array[],
    init: Http1Init,
  ): Promise<Reply> {
    const connection = await this.#connect(target, init.signal);
    try {
      return await this.#exchange(connection, message, init);
    } catch (error) {
      connection.close();
      throw init.signal.aborted ? init.signal.reason : error;
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Closes every idle connection; connections in use close when their answer ends. */
  close(): void {
    this.#shut = true;
    this.#pool.close();
  }

  #target(url: string): Target {
    let target = this.#targets.get(url);
    if (target) return target;
    target = targetOf(url);
    // URLs come from the config (endpoint x route, plus paged ids); the map is bounded anyway.
    if (this.#targets.size >= 1024) this.#targets.clear();
    this.#targets.set(url, target);
    return target;
  }

  #park(connection: Connection, keepAliveMs: number): void {
    if (this.#shut || this.#opened - this.#closed > this.maxOpen) connection.close();
    else this.#pool.park(connection, keepAliveMs);
  }

  /** A new connection, given up after `connectTimeoutMs` (an upstream that never answers a SYN) or on abort. */
  async #connect(target: Target, signal: AbortLike): Promise<Connection> {
    const conn = await openSocket(target, signal, this.connectTimeoutMs, this.#caCerts);
    this.#opened++;
    return new Connection(conn, target.origin, this.#onClosed);
  }

  /** Not async: a request waits for the answer's head in the socket read alone. */
  #exchange(
    connection: Connection,
    message: Uint8Array | readonly Uint8Array[],
    init: Http1Init,
    reused = false,
  ): Promise<Reply> {
    const { signal } = init;
    // Not a closure of this frame: the listener stays as long as a stream's body, and this frame holds `init`.
    const onAbort = closer(connection);
    signal.addEventListener("abort", onAbort);
    // The head is read while the request is still being written: an upstream that refuses a large body early (a
    // 413) is heard, where a write would block or break. Such a connection (not `sent`) is not reused.
    // A streamed body that failed (its client left) closes the connection, and is what the read then fails with:
    // not the endpoint's failure.
    let bodyFailed: RequestBodyFailed | undefined;
    writeRequest(connection, message, init.body).catch((error) => {
      if (error instanceof RequestBodyFailed) bodyFailed = error;
      connection.close();
    });
    return readHead(connection).then(
      (head) => this.#reply(connection, head, init, onAbort, reused),
      (error) => {
        signal.removeEventListener("abort", onAbort);
        throw bodyFailed ?? error;
      },
    );
  }

  /** The answer to `head`; the abort listener stays only with a body left to read. */
  #reply(connection: Connection, head: Head, init: Http1Init, onAbort: () => void, reused: boolean): Reply {
    const { signal } = init;
    let handedOver = false;
    try {
      if (reused && head.status === 408) throw CLOSED_IDLE;
      const framing = bodyFraming(init.method, head);
      const guard = init.guard;
      // The answer is built before the connection goes back to the pool: building it can still fail.
      if (framing.kind === "none" || (framing.kind === "length" && framing.length === 0)) {
        const reply = answer(head, null, guard);
        this.#finish(connection, head);
        return reply;
      }
      // A compressed body is guarded after decoding, by `answer`.
      const bodyGuard = isCompressed(head) ? undefined : guard;
      if (framing.kind === "length") bodyGuard?.checkLength(framing.length);
      if (framing.kind === "length" && connection.available >= framing.length) {
        const bytes = connection.take(framing.length, true);
        const reply = answer(head, bodyGuard ? bodyGuard.whole(bytes) : bytes, guard);
        this.#finish(connection, head);
        return reply;
      }
      const done = this.#bodyDone(connection, head, framing.kind !== "close", signal, onAbort);
      const body = new BodyReader(connection, framing, done, signal, bodyGuard);
      const reply = answer(head, body, guard);
      handedOver = true;
      return reply;
    } finally {
      if (!handedOver) signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * What ends a body read off `connection`. Made here, not in `#exchange`, so it holds the two fields of the head
   * it needs rather than the whole head for as long as a stream is open (issue 22.4c: memory per open stream).
   */
  #bodyDone(
    connection: Connection,
    { keepAlive, keepAliveMs }: Head,
    framed: boolean,
    signal: AbortLike,
    onAbort: () => void,
  ): (complete: boolean) => void {
    return (complete) => {
      signal.removeEventListener("abort", onAbort);
      if (complete && framed) this.#finish(connection, { keepAlive, keepAliveMs });
      else connection.close();
    };
  }

  /** An answer read to its end: the connection is reused if both sides allow it and nothing extra arrived. */
  #finish(connection: Connection, head: Pick<Head, "keepAlive" | "keepAliveMs">): void {
    if (head.keepAlive && connection.sent && connection.available === 0 && !connection.streamed) {
      this.#park(connection, head.keepAliveMs);
    } else connection.close();
  }
}

/**
 * A 408 on a reused connection: the server timed it out as idle while the request was on its way (a 408 it sent
 * before then spoils the parked connection instead, `Connection.idle`). It did not take the request, which RFC 9110
 * (15.5.9) lets a client send again: it goes on a new connection, a POST too.
 */
const CLOSED_IDLE = new Error("the server closed the kept-alive connection as idle (408)");

/** Closes `connection` (an abort listener that holds nothing else). */
const closer = (connection: Connection) => () => connection.close();
