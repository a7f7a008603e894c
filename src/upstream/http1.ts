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
 * (and the connection goes straight back to the pool); anything longer is a stream that reads the socket as the
 * consumer pulls, so SSE events pass one by one. Aborting the signal closes the connection: a pending `fetch`
 * rejects, and a body being read errors, with the signal's reason.
 */

import { BodyReader, Connection, readHead } from "./http1_connection.ts";
import { answer, bodyFraming, type Head, requestBytes } from "./http1_wire.ts";

export { UpstreamProtocolError } from "./http1_wire.ts";

export interface Http1Init {
  readonly method: string;
  /** Lower-case names. `host`, `content-length` and `connection` are set here. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly signal: AbortSignal;
}

export interface Http1Options {
  /** An idle connection older than this is closed rather than reused. Default 30 s. */
  readonly idleMs?: number;
  /** Idle connections kept per origin. Default 256. */
  readonly maxIdlePerOrigin?: number;
  /** Extra root certificates (PEM) for TLS upstreams, for tests with a self-signed one. */
  readonly caCerts?: string[];
}

interface Target {
  readonly origin: string;
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  /** The start of the request: request line and `host`. */
  readonly start: string;
}

const IDEMPOTENT = new Set(["GET", "HEAD", "DELETE", "OPTIONS", "PUT"]);

export class Http1Agent {
  readonly #idleMs: number;
  readonly #maxIdle: number;
  readonly #caCerts?: string[];
  readonly #idle = new Map<string, Connection[]>();
  readonly #targets = new Map<string, Target>();
  #sweeper?: ReturnType<typeof setInterval>;
  #closed = false;
  #opened = 0;

  constructor(options: Http1Options = {}) {
    this.#idleMs = options.idleMs ?? 30_000;
    this.#maxIdle = options.maxIdlePerOrigin ?? 256;
    this.#caCerts = options.caCerts;
  }

  /** Connections opened so far. */
  get connectionsOpened(): number {
    return this.#opened;
  }

  /** Connections parked for reuse now. */
  get idleConnections(): number {
    let count = 0;
    for (const list of this.#idle.values()) count += list.length;
    return count;
  }

  /** Sends one request; resolves with the answer once its head has arrived. */
  readonly fetch = async (url: string, init: Http1Init): Promise<Response> => {
    const { signal } = init;
    signal.throwIfAborted();
    const target = this.#target(url);
    const message = requestBytes(init.method, target.start, init.headers, init.body);
    for (let attempt = 0;; attempt++) {
      // A retry always takes a new connection: the pool may hold more that the server has closed.
      const reused = attempt === 0 ? this.#take(target.origin) : undefined;
      const connection = reused ?? await this.#connect(target, signal).catch((error) => {
        throw signal.aborted ? signal.reason : error;
      });
      try {
        return await this.#exchange(connection, message, init);
      } catch (error) {
        connection.close();
        if (signal.aborted) throw signal.reason;
        // A kept-alive connection the server closed as it was taken fails before any byte of an answer. The
        // request goes once more on a new connection if it cannot have been acted on (not fully written) or may
        // be repeated (GET, DELETE). Otherwise the failure is the caller's to see, count and fail over: a POST
        // that an upstream received and then dropped is not sent to it again behind the caller's back.
        if (reused && !connection.answered && (!connection.sent || IDEMPOTENT.has(init.method))) continue;
        throw error;
      }
    }
  };

  [Symbol.dispose](): void {
    this.close();
  }

  /** Closes every idle connection; connections in use close when their answer ends. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const list of this.#idle.values()) for (const connection of list) connection.close();
    this.#idle.clear();
  }

  #target(url: string): Target {
    let target = this.#targets.get(url);
    if (target) return target;
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new TypeError(`unsupported upstream protocol ${parsed.protocol}`);
    }
    if (parsed.username || parsed.password) {
      throw new TypeError("credentials in an upstream URL are not supported");
    }
    const tls = parsed.protocol === "https:";
    const port = parsed.port ? Number(parsed.port) : tls ? 443 : 80;
    // URL keeps IPv6 hosts in brackets; connect wants them bare.
    const hostname = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
    target = {
      origin: `${parsed.protocol}//${parsed.host}`,
      hostname,
      port,
      tls,
      start: ` ${parsed.pathname}${parsed.search} HTTP/1.1\r\nhost: ${parsed.host}\r\n`,
    };
    // URLs come from the config (endpoint x route, plus paged ids); the map is bounded anyway.
    if (this.#targets.size >= 1024) this.#targets.clear();
    this.#targets.set(url, target);
    return target;
  }

  /** The most recently parked connection that is still good: not expired, not closed or spoken to by the server. */
  #take(origin: string): Connection | undefined {
    const list = this.#idle.get(origin);
    if (!list) return undefined;
    const now = performance.now();
    let connection: Connection | undefined;
    while ((connection = list.pop())) {
      if (connection.reusable && connection.expiresAt > now) {
        connection.conn.ref();
        return connection;
      }
      connection.close();
    }
    return undefined;
  }

  #park(connection: Connection, keepAliveMs: number): void {
    // The server's own idle timeout (`keep-alive: timeout=N`), less a second, if it is shorter than ours.
    const idleMs = Math.min(this.#idleMs, keepAliveMs - 1000);
    if (this.#closed || idleMs <= 0 || !connection.reusable) return connection.close();
    let list = this.#idle.get(connection.origin);
    if (!list) this.#idle.set(connection.origin, list = []);
    if (list.length >= this.#maxIdle) return connection.close();
    connection.idle(performance.now() + idleMs);
    list.push(connection);
    this.#sweeper ??= this.#startSweeper();
  }

  #startSweeper(): ReturnType<typeof setInterval> {
    const id = setInterval(() => {
      const now = performance.now();
      let left = 0;
      for (const [origin, list] of this.#idle) {
        const kept = list.filter((connection) =>
          (connection.reusable && connection.expiresAt > now) || (connection.close(), false)
        );
        if (kept.length === 0) this.#idle.delete(origin);
        else this.#idle.set(origin, kept);
        left += kept.length;
      }
      if (left === 0) {
        clearInterval(this.#sweeper);
        this.#sweeper = undefined;
      }
    }, Math.max(1000, this.#idleMs / 2));
    // Neither the sweeper nor the parked connections' reads keep the process alive.
    Deno.unrefTimer(id);
    return id;
  }

  async #connect(target: Target, signal: AbortSignal): Promise<Connection> {
    const options = { hostname: target.hostname, port: target.port };
    let conn: Deno.Conn;
    if (target.tls) {
      const pending = Deno.connectTls({ ...options, caCerts: this.#caCerts, alpnProtocols: ["http/1.1"] });
      conn = await untilAborted(pending, signal, closeQuietly);
    } else {
      const tcp = await Deno.connect({ ...options, signal });
      tcp.setNoDelay(true);
      conn = tcp;
    }
    this.#opened++;
    return new Connection(conn, target.origin);
  }

  async #exchange(connection: Connection, message: Uint8Array, init: Http1Init): Promise<Response> {
    const { signal } = init;
    const onAbort = () => connection.close();
    signal.addEventListener("abort", onAbort);
    let handedOver = false;
    try {
      // The head is read while the request is still being written: an upstream that refuses a large body early
      // (a 413) is heard, where a write would block or break. Such a connection (not `sent`) is not reused.
      connection.write(message).catch(() => connection.close());
      const head = await readHead(connection);
      const framing = bodyFraming(init.method, head);
      // The answer is built before the connection goes back to the pool: building it can still fail.
      if (framing.kind === "none" || (framing.kind === "length" && framing.length === 0)) {
        const response = answer(head, null);
        this.#finish(connection, head);
        return response;
      }
      if (framing.kind === "length" && connection.available >= framing.length) {
        const response = answer(head, connection.take(framing.length));
        this.#finish(connection, head);
        return response;
      }
      const body = new BodyReader(connection, framing, (complete) => {
        signal.removeEventListener("abort", onAbort);
        if (complete && framing.kind !== "close") this.#finish(connection, head);
        else connection.close();
      }, signal);
      const response = answer(head, body.stream());
      handedOver = true;
      return response;
    } finally {
      if (!handedOver) signal.removeEventListener("abort", onAbort);
    }
  }

  /** An answer read to its end: the connection is reused if both sides allow it and nothing extra arrived. */
  #finish(connection: Connection, head: Head): void {
    if (head.keepAlive && connection.sent && connection.available === 0) {
      this.#park(connection, head.keepAliveMs);
    } else connection.close();
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // closed already
  }
}

/** Resolves as `pending` does, or rejects with the signal's reason; a connection that comes too late is closed. */
function untilAborted<T>(pending: Promise<T>, signal: AbortSignal, discard: (late: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    pending.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) discard(value);
        else resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
