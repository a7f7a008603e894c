/**
 * The proxy's own HTTP/1.1 client for upstream calls: keep-alive connections per origin over `Deno.connect` or
 * `Deno.connectTls`, one write per request, the answer's head parsed here and its body framed by length, by
 * chunks or by the connection's close.
 *
 * Why not `fetch`: on this project's 2-core VM a gateway calling its upstream through Deno's fetch spent about
 * twice the CPU per request of the same gateway on this client (bench/RESULTS.md, session 4). Every request then
 * pays for a `Request`, a dependent abort signal, header validation in two layers and a hand-off to hyper's pool,
 * where this client writes one buffer and reads one. What it gives up is listed in the README: no HTTP/2, no
 * `HTTP(S)_PROXY` and no OpenTelemetry spans; `general_settings.upstream_client: fetch` brings them back (and is
 * chosen by itself when a proxy variable or `OTEL_DENO` is set).
 *
 * The answer is a web `Response`, as from fetch: a body that arrived whole with its head is handed over as bytes
 * (and the connection goes straight back to the pool); anything longer is a stream that reads the socket as the
 * consumer pulls, so SSE events pass one by one. Aborting the signal closes the connection: a pending `fetch`
 * rejects, and a body being read errors, with the signal's reason.
 */

/** Largest answer head accepted (status line and headers). */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Bytes read from the socket at most per read; also the buffer each connection keeps. */
const READ_BYTES = 16 * 1024;

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

const encoder = new TextEncoder();
const IDEMPOTENT = new Set(["GET", "HEAD", "DELETE", "OPTIONS", "PUT"]);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const BAD_VALUE = /[\r\n\0]/;
const NON_ASCII = /[\u0080-\uffff]/;
/** A reason phrase `Response` accepts: tab, space, visible ASCII and obs-text. */
const REASON = /^[\t -~\u0080-\u00ff]*$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: |$)/;

/** An answer the client cannot read: bad framing, a head too large, a connection closed before the end. */
export class UpstreamProtocolError extends Error {
  override readonly name = "UpstreamProtocolError";
}

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
    const message = requestBytes(init.method, target, init.headers, init.body);
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
      // (a 413) is heard, where a write would block or break. Such a connection is not reused.
      let written = false;
      connection.write(message).then(() => written = true, () => connection.close());
      const head = await readHead(connection);
      const framing = bodyFraming(init.method, head);
      // The answer is built before the connection goes back to the pool: building it can still fail.
      if (framing.kind === "none" || (framing.kind === "length" && framing.length === 0)) {
        const response = answer(head, null);
        this.#finish(connection, head, written);
        return response;
      }
      if (framing.kind === "length" && connection.available >= framing.length) {
        const response = answer(head, connection.take(framing.length));
        this.#finish(connection, head, written);
        return response;
      }
      const body = new BodyReader(connection, framing, (complete) => {
        signal.removeEventListener("abort", onAbort);
        if (complete && framing.kind !== "close") this.#finish(connection, head, written);
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
  #finish(connection: Connection, head: Head, written: boolean): void {
    if (head.keepAlive && written && connection.available === 0) this.#park(connection, head.keepAliveMs);
    else connection.close();
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

function requestBytes(
  method: string,
  target: Target,
  headers: Readonly<Record<string, string>>,
  body: string | undefined,
): Uint8Array {
  let head = method + target.start;
  for (const name in headers) {
    const value = headers[name];
    // Header names and values come from the config and the client: neither may split the request.
    if (!TOKEN.test(name) || BAD_VALUE.test(value)) throw new TypeError("invalid upstream request header");
    if (
      name === "host" || name === "content-length" || name === "connection" || name === "transfer-encoding"
    ) {
      continue;
    }
    head += `${name}: ${value}\r\n`;
  }
  // The answer is parsed here (JSON, SSE): ask for it uncompressed.
  if (!("accept-encoding" in headers)) head += "accept-encoding: identity\r\n";
  // A POST without a body still says so (some front ends answer 411 otherwise), as fetch does.
  if (body === undefined) {
    return headBytes(head + (method === "GET" || method === "HEAD" ? "\r\n" : "content-length: 0\r\n\r\n"));
  }
  const bytes = encoder.encode(body);
  const start = headBytes(`${head}content-length: ${bytes.length}\r\n\r\n`);
  // One buffer, one write.
  const message = new Uint8Array(start.length + bytes.length);
  message.set(start);
  message.set(bytes, start.length);
  return message;
}

/** Header bytes are Latin-1, one byte per char (as fetch sends a header value), not UTF-8. */
function headBytes(head: string): Uint8Array {
  if (!NON_ASCII.test(head)) return encoder.encode(head);
  const bytes = new Uint8Array(head.length);
  for (let i = 0; i < head.length; i++) {
    const code = head.charCodeAt(i);
    if (code > 0xff) throw new TypeError("invalid upstream request header");
    bytes[i] = code;
  }
  return bytes;
}

interface Head {
  readonly status: number;
  readonly statusText: string;
  readonly headers: [string, string][];
  readonly keepAlive: boolean;
  /** The server's idle timeout from `keep-alive: timeout=N`; Infinity when not given. */
  readonly keepAliveMs: number;
  readonly contentLength?: string;
  readonly transferEncoding?: string;
  readonly contentEncoding?: string;
}

/** Reads the answer's head, skipping interim (1xx) answers. */
async function readHead(connection: Connection): Promise<Head> {
  for (;;) {
    const end = await connection.readUntilBlankLine(MAX_HEAD_BYTES);
    const head = parseHead(connection.takeText(end));
    if (head.status >= 200) return head;
    if (head.status === 101) throw new UpstreamProtocolError("the upstream switched protocols");
  }
}

function parseHead(text: string): Head {
  const lines = text.split("\r\n");
  const statusLine = STATUS_LINE.exec(lines[0]);
  if (!statusLine) throw new UpstreamProtocolError("malformed status line from the upstream");
  const status = Number(statusLine[2]);
  if (status < 100 || status > 599) {
    throw new UpstreamProtocolError("malformed status line from the upstream");
  }
  const headers: [string, string][] = [];
  let keepAliveMs = Infinity;
  let connection = "";
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let contentEncoding: string | undefined;
  // The last two lines are the blank line's split.
  for (let i = 1; i < lines.length - 2; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    if (colon <= 0) throw new UpstreamProtocolError("malformed header line from the upstream");
    const name = line.slice(0, colon).toLowerCase();
    if (!TOKEN.test(name)) throw new UpstreamProtocolError("malformed header name from the upstream");
    const value = line.slice(colon + 1).trim();
    if (BAD_VALUE.test(value)) throw new UpstreamProtocolError("malformed header value from the upstream");
    switch (name) {
      case "content-length":
        if (contentLength !== undefined && contentLength !== value) {
          throw new UpstreamProtocolError("conflicting content-length from the upstream");
        }
        contentLength = value;
        break;
      case "transfer-encoding":
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        break;
      case "connection":
        connection += `${value.toLowerCase()},`;
        break;
      case "content-encoding":
        contentEncoding = value.toLowerCase();
        break;
      case "keep-alive": {
        const timeout = /(?:^|[\s,])timeout=(\d+)/i.exec(value);
        if (timeout) keepAliveMs = Number(timeout[1]) * 1000;
        break;
      }
    }
    headers.push([name, value]);
  }
  const http11 = statusLine[1] === "1";
  // A length beside a transfer coding may be a smuggling attempt: this answer is read, the connection not reused.
  const keepAlive = http11 && !/(^|[\s,])close\s*,/.test(connection) &&
    !(contentLength !== undefined && transferEncoding !== undefined);
  const reason = lines[0].slice(13);
  return {
    status,
    statusText: REASON.test(reason) ? reason : "",
    headers,
    keepAlive,
    keepAliveMs,
    contentLength,
    transferEncoding,
    contentEncoding,
  };
}

type Framing =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "close" };

/** How the body of an answer ends (RFC 9112, section 6.3). */
function bodyFraming(method: string, head: Head): Framing {
  const { status } = head;
  if (method === "HEAD" || status === 204 || status === 304) return { kind: "none" };
  if (head.transferEncoding !== undefined) {
    const codings = head.transferEncoding.toLowerCase().split(",").map((coding) => coding.trim());
    // Only chunked is asked for (no TE header is sent); with it the length is ignored.
    if (codings.some((coding) => coding !== "chunked" && coding !== "identity")) {
      throw new UpstreamProtocolError("unsupported transfer coding from the upstream");
    }
    return codings.includes("chunked") ? { kind: "chunked" } : { kind: "close" };
  }
  if (head.contentLength !== undefined) {
    const values = head.contentLength.split(",").map((value) => value.trim());
    if (!values.every((value) => value === values[0] && /^\d{1,15}$/.test(value))) {
      throw new UpstreamProtocolError("malformed content-length from the upstream");
    }
    return { kind: "length", length: Number(values[0]) };
  }
  return { kind: "close" };
}

function answer(
  head: Head,
  body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array<ArrayBuffer>> | null,
): Response {
  const { status, statusText, headers } = head;
  if (body === null || status === 205) {
    // A 205 has no content by definition: whatever framing it came with is dropped with its connection.
    if (body instanceof ReadableStream) body.cancel().catch(() => {});
    return new Response(null, { status, statusText, headers });
  }
  const coding = head.contentEncoding;
  if (coding === "gzip" || coding === "x-gzip" || coding === "deflate") {
    // Asked for identity; a server that compresses anyway is decoded here, as fetch would.
    const source = body instanceof Uint8Array ? new Response(body).body! : body;
    const plain = headers.filter(([name]) => name !== "content-encoding" && name !== "content-length");
    const format = coding === "deflate" ? "deflate" : "gzip";
    const decoded = source.pipeThrough(
      new DecompressionStream(format) as TransformStream<Uint8Array, Uint8Array>,
    );
    return new Response(decoded, { status, statusText, headers: plain });
  }
  return new Response(body, { status, statusText, headers });
}

/** A socket with a read buffer: the bytes read but not yet consumed are `buffer[start..end)`. */
class Connection {
  #buffer = new Uint8Array(READ_BYTES);
  #start = 0;
  #end = 0;
  #closed = false;
  /** Set once any byte of an answer has arrived on this use. */
  answered = false;
  /** Set once the request of this use is fully written. */
  sent = false;
  /** While parked: when it stops being reusable (`performance.now()` ms). */
  expiresAt = 0;
  /** The read kept pending while the connection is parked. */
  #watch?: Promise<number | null>;
  /** The watch read settled while parked: the server closed, or sent bytes nobody asked for. */
  #spoiled = false;

  constructor(readonly conn: Deno.Conn, readonly origin: string) {}

  get closed(): boolean {
    return this.#closed;
  }

  get reusable(): boolean {
    return !this.#closed && !this.#spoiled;
  }

  /**
   * Parks the connection until `expiresAt`. A read stays pending meanwhile, so a server that closes an idle
   * connection (or answers it with a stray 408) is noticed before a request is sent on it; that read becomes the
   * first read of the next use.
   */
  idle(expiresAt: number): void {
    this.expiresAt = expiresAt;
    this.#spoiled = false;
    this.#start = this.#end = 0;
    const watch = this.conn.read(this.#buffer);
    this.#watch = watch;
    // A parked connection's read does not keep the process alive; `take` makes it count again.
    this.conn.unref();
    const settled = () => {
      if (this.#watch === watch) this.#spoiled = true;
    };
    watch.then(settled, settled);
  }

  get available(): number {
    return this.#end - this.#start;
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.answered = false;
    this.sent = false;
    let written = 0;
    while (written < bytes.length) written += await this.conn.write(bytes.subarray(written));
    this.sent = true;
  }

  /** Reads more bytes into the buffer; false at the end of the stream. */
  async fill(limit = READ_BYTES): Promise<boolean> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    else if (this.#end === this.#buffer.length) {
      if (this.#start > 0) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      } else {
        if (this.#buffer.length >= limit) {
          throw new UpstreamProtocolError("a line of the upstream's answer is too long");
        }
        const larger = new Uint8Array(Math.min(limit, this.#buffer.length * 2));
        larger.set(this.#buffer.subarray(0, this.#end));
        this.#buffer = larger;
      }
    }
    let read: number | null;
    const watch = this.#watch;
    if (watch) {
      // Parked with an empty buffer, the watch read fills it from the start, where this read would have.
      this.#watch = undefined;
      read = await watch;
    } else read = await this.conn.read(this.#buffer.subarray(this.#end));
    if (read === null) return false;
    this.answered = true;
    this.#end += read;
    return true;
  }

  /** Reads until the buffer holds a whole line; returns its length with the CRLF. */
  async readLine(limit: number): Promise<number> {
    let scanned = 0;
    for (;;) {
      const at = this.#indexOfCrlf(this.#start + scanned);
      if (at >= 0) return at + 2 - this.#start;
      scanned = Math.max(0, this.available - 1);
      if (!await this.fill(limit)) {
        throw new UpstreamProtocolError("the upstream closed the connection mid-answer");
      }
    }
  }

  /** Reads until an empty line; returns the length of the block up to and including it. */
  async readUntilBlankLine(limit: number): Promise<number> {
    let scanned = 0;
    for (;;) {
      const buffer = this.#buffer;
      for (let at = this.#indexOfCrlf(this.#start + scanned); at >= 0; at = this.#indexOfCrlf(at + 2)) {
        if (at + 3 < this.#end && buffer[at + 2] === 13 && buffer[at + 3] === 10) return at + 4 - this.#start;
      }
      scanned = Math.max(0, this.available - 3);
      if (this.available >= limit) throw new UpstreamProtocolError("the upstream's answer head is too large");
      if (!await this.fill(limit + 4)) {
        throw new UpstreamProtocolError(
          this.answered
            ? "the upstream closed the connection mid-answer"
            : "the upstream closed the connection",
        );
      }
    }
  }

  /** The offset of the next CRLF at or after `from` within the buffered bytes, or -1. */
  #indexOfCrlf(from: number): number {
    const buffer = this.#buffer;
    const last = this.#end - 1;
    for (let at = from; at < last; at++) {
      if (buffer[at] === 13 && buffer[at + 1] === 10) return at;
    }
    return -1;
  }

  /** Consumes `length` buffered bytes as text, one char per byte (header bytes are Latin-1). */
  takeText(length: number): string {
    const bytes = this.#buffer.subarray(this.#start, this.#start + length);
    this.#start += length;
    let text = "";
    for (let at = 0; at < bytes.length; at += 8192) {
      text += String.fromCharCode.apply(null, bytes.subarray(at, at + 8192) as unknown as number[]);
    }
    return text;
  }

  /** Consumes up to `length` buffered bytes as a copy of their own. */
  take(length: number): Uint8Array<ArrayBuffer> {
    const end = Math.min(this.#end, this.#start + length);
    const bytes = this.#buffer.slice(this.#start, end);
    this.#start = end;
    return bytes;
  }

  byteAt(offset: number): number {
    return this.#buffer[this.#start + offset];
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed by the runtime
    }
  }
}

/** Reads a body off a connection as its framing says, as a stream the consumer pulls. */
class BodyReader {
  /** Bytes of the current chunk (or of the whole body, for a length) still to come. */
  #left: number;
  #state: "data" | "size" | "crlf" | "trailers" | "done";
  #trailerBytes = 0;

  constructor(
    private readonly connection: Connection,
    private readonly framing: Framing,
    private readonly done: (complete: boolean) => void,
    private readonly signal: AbortSignal,
  ) {
    this.#left = framing.kind === "length" ? framing.length : framing.kind === "close" ? Infinity : 0;
    this.#state = framing.kind === "chunked" ? "size" : "data";
  }

  stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    let ended = false;
    const end = (complete: boolean) => {
      if (ended) return;
      ended = true;
      this.done(complete);
    };
    return new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        if (this.signal.aborted) {
          // Bytes already buffered are not handed on after an abort: the body ends with the reason.
          end(false);
          controller.error(this.signal.reason);
          return;
        }
        try {
          const chunk = await this.#next();
          if (chunk) controller.enqueue(chunk);
          else {
            end(true);
            controller.close();
          }
        } catch (error) {
          end(false);
          controller.error(this.signal.aborted ? this.signal.reason : error);
        }
      },
      cancel: () => end(false),
    }, { highWaterMark: 0 });
  }

  /** The next bytes of the body, as soon as any are there; undefined at its end. */
  async #next(): Promise<Uint8Array<ArrayBuffer> | undefined> {
    const connection = this.connection;
    for (;;) {
      switch (this.#state) {
        case "data":
          if (this.#left === 0) {
            if (this.framing.kind !== "chunked") return undefined;
            this.#state = "crlf";
            continue;
          }
          if (connection.available === 0 && !await connection.fill()) {
            if (this.framing.kind === "close") return undefined;
            throw new UpstreamProtocolError("the upstream closed the connection mid-answer");
          } else if (connection.available > 0) {
            const bytes = connection.take(this.#left);
            this.#left -= bytes.length;
            return bytes;
          }
          continue;
        case "size": {
          const length = await connection.readLine(READ_BYTES);
          const line = connection.takeText(length);
          const size = /^([0-9a-fA-F]{1,12})[ \t]*(;[^\r\n]*)?\r\n$/.exec(line);
          if (!size) throw new UpstreamProtocolError("malformed chunk size from the upstream");
          this.#left = parseInt(size[1], 16);
          this.#state = this.#left === 0 ? "trailers" : "data";
          continue;
        }
        case "crlf": {
          while (connection.available < 2) {
            if (!await connection.fill()) {
              throw new UpstreamProtocolError("the upstream closed the connection mid-answer");
            }
          }
          if (connection.byteAt(0) !== 13 || connection.byteAt(1) !== 10) {
            throw new UpstreamProtocolError("malformed chunk end from the upstream");
          }
          connection.take(2);
          this.#state = "size";
          continue;
        }
        case "trailers": {
          const length = await connection.readLine(MAX_HEAD_BYTES);
          connection.takeText(length);
          this.#trailerBytes += length;
          if (this.#trailerBytes > MAX_HEAD_BYTES) {
            throw new UpstreamProtocolError("the upstream's trailers are too large");
          }
          if (length === 2) this.#state = "done";
          continue;
        }
        case "done":
          return undefined;
      }
    }
  }
}
