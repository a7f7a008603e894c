/**
 * The proxy's HTTP server: its own accept loop over `Deno.listen`, each connection served by Deno's HTTP engine.
 *
 * Why not `Deno.serve`: its accept loop runs inside the runtime and ends on the first accept error, so a process
 * out of file descriptors (EMFILE) stops serving and exits on the unhandled rejection; and it has no idle or
 * header timeouts and no connection cap. Here the loop is the proxy's own:
 *
 * - out of descriptors on accept: logged once per interval, retried every `retryMs` while connections already open
 *   keep being served; accepting resumes as soon as descriptors free up;
 * - past `maxConnections` open client connections, a new one waits unread for a place, at most `waitMs` and at
 *   most `maxWaiting` of them (the longest-waiting is closed when another comes; waiting.ts), then is closed;
 * - a connection that has not sent a whole request head within `headerTimeoutMs` of being accepted, or sits idle
 *   between requests for `keepaliveTimeoutMs`, is closed (one sweep timer for all of them).
 *
 * - a connection upgraded to a WebSocket belongs to its socket (upgrade.ts): still counted, never swept as idle,
 *   closed with 1001 at shutdown once the other connections have drained.
 *
 * Each accepted connection is handed to the runtime's `serveHttpOnConnection`, the same engine `Deno.serve` runs
 * per connection (HTTP/1.1 and h2c). Deno ships it as an internal: where it is missing, `serve` falls back to
 * `Deno.serve` and says so (`limited: false`; both in engine.ts).
 */

import { sleep, startTimer, type Timer } from "../util/timer.ts";
import { countServer, goingAway } from "./upgrade.ts";
import { Open, type Shared } from "./open_connection.ts";
import { Waiting } from "./waiting.ts";
import { engineError, plainServe, type ServeOnConnection, serveOnConnection } from "./engine.ts";

export interface ServeOptions {
  readonly hostname: string;
  readonly port: number;
  /** SO_REUSEPORT (Linux): several processes listen on one port and the kernel spreads connections over them. */
  readonly reusePort?: boolean;
  readonly maxConnections: number;
  /** How long a connection accepted at the cap waits for a place before it is closed. Default 1,000 ms. */
  readonly waitMs?: number;
  /** How many connections wait for a place at most. Default 16. */
  readonly maxWaiting?: number;
  readonly keepaliveTimeoutMs: number;
  readonly headerTimeoutMs: number;
  readonly onListen?: (addr: Deno.NetAddr) => void;
  /** Told about refused connections and accept failures, at most once per `reportEveryMs` per kind. */
  readonly onTrouble?: (trouble: Trouble) => void;
  /** Default 10 s. */
  readonly reportEveryMs?: number;
  /** Pause before accepting again when out of descriptors. Default 50 ms. */
  readonly retryMs?: number;
}

export interface Trouble {
  readonly kind: "out_of_descriptors" | "max_connections" | "accept_failed";
  /** How many times it happened since the last report. */
  readonly count: number;
  readonly open: number;
  readonly message?: string;
}

export type Handler = (
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/** Requests a server has taken so far, and those whose answer has not been sent yet (streams: their last byte). */
export interface Traffic {
  readonly requests: number;
  readonly inflight: number;
}

export interface Server extends AsyncDisposable, Traffic {
  readonly addr: Deno.NetAddr;
  /** False when the runtime lacks per-connection serving and this is plain `Deno.serve` (no limits). */
  readonly limited: boolean;
  /** Open client connections. */
  readonly connections: number;
  /** Stops accepting, lets requests in flight finish, closes idle connections. */
  shutdown(): Promise<void>;
}

export function serve(options: ServeOptions, handler: Handler): Server {
  const serveOn = serveOnConnection();
  return serveOn ? new LimitedServer(options, handler, serveOn) : plainServe(options, handler);
}

class LimitedServer implements Server {
  readonly addr: Deno.NetAddr;
  readonly limited = true;
  readonly #listener: Deno.TcpListener;
  readonly #open = new Set<Open>();
  readonly #shared: Shared;
  readonly #options: ServeOptions;
  readonly #serveOn: ServeOnConnection;
  readonly #sweeper: Timer;
  readonly #accepting: Promise<void>;
  readonly #waiting: Waiting;
  readonly #troubles = new Map<Trouble["kind"], { count: number; reported: number; message?: string }>();
  #closed = false;
  readonly #uncount: () => void;

  constructor(options: ServeOptions, handler: Handler, serveOn: ServeOnConnection) {
    this.#options = options;
    this.#shared = { open: this.#open, handler, release: this.#release, tick: 0, requests: 0, inflight: 0 };
    this.#waiting = new Waiting(options.maxWaiting ?? 16, options.waitMs ?? 1000, this.#refuse);
    this.#serveOn = serveOn;
    this.#uncount = countServer(this.#open);
    this.#listener = Deno.listen({
      hostname: options.hostname,
      port: options.port,
      reusePort: options.reusePort,
      transport: "tcp",
    });
    this.addr = this.#listener.addr;
    const every = Math.min(
      1000,
      Math.max(50, Math.min(options.keepaliveTimeoutMs, options.headerTimeoutMs) / 4),
    );
    this.#sweeper = startTimer(every, () => this.#sweep(every), { repeat: true });
    options.onListen?.(this.addr);
    this.#accepting = this.#accept();
  }

  get connections(): number {
    return this.#open.size;
  }

  get requests(): number {
    return this.#shared.requests;
  }

  get inflight(): number {
    return this.#shared.inflight;
  }

  async #accept(): Promise<void> {
    const retryMs = this.#options.retryMs ?? 50;
    while (!this.#closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closed || error instanceof Deno.errors.BadResource) return;
        const message = error instanceof Error ? error.message : String(error);
        const exhausted = /os error (24|23)\b|too many open files/i.test(message);
        this.#trouble(exhausted ? "out_of_descriptors" : "accept_failed", message);
        await sleep(exhausted ? retryMs : 10);
        continue;
      }
      // Accepted in the turn `shutdown` ran: its waiting list is closed already.
      if (this.#closed) return close(conn);
      if (this.#open.size < this.#options.maxConnections) this.#track(conn);
      else this.#waiting.add(conn);
    }
  }

  /** A connection is no longer open: the longest-waiting one takes its place. */
  readonly #release = (open: Open): void => {
    this.#open.delete(open);
    while (this.#open.size < this.#options.maxConnections && !this.#closed) {
      const conn = this.#waiting.take();
      if (!conn) return;
      this.#track(conn);
    }
  };

  readonly #refuse = (conn: Deno.TcpConn): void => {
    close(conn);
    this.#trouble("max_connections");
  };

  #track(conn: Deno.TcpConn): void {
    const open = new Open(this.#shared, conn);
    try {
      open.server = this.#serveOn(conn, open, open.handler, engineError, () => {});
    } catch (error) {
      this.#open.delete(open);
      close(conn);
      this.#trouble("accept_failed", error instanceof Error ? error.message : String(error));
      return;
    }
    open.pin();
    open.server.finished.then(open.ended, open.ended);
  }

  /**
   * Closes connections idle past their limit: the header timeout before a first request, keep-alive after. A
   * connection's `idleSince` is the tick before it became idle, up to `every` earlier than that moment, so it is
   * closed one sweep later than the limit alone says: never before its limit (before, up to `every` early: a head
   * sent at 9.1 s was cut by the 10 s header timeout), at most `every` after it (and later when the loop is busy:
   * the ticks count sweeps, not wall time).
   */
  #sweep(every: number): void {
    const tick = this.#shared.tick += every;
    const { headerTimeoutMs, keepaliveTimeoutMs } = this.#options;
    for (const open of this.#open) {
      if (open.inflight > 0 || open.socket) continue;
      const limit = open.served === 0 ? headerTimeoutMs : keepaliveTimeoutMs;
      if (tick - open.idleSince >= limit + every) {
        this.#release(open);
        open.close();
      }
    }
  }

  #trouble(kind: Trouble["kind"], message?: string): void {
    let seen = this.#troubles.get(kind);
    if (!seen) this.#troubles.set(kind, seen = { count: 0, reported: -Infinity });
    seen.count++;
    seen.message = message;
    const now = performance.now();
    if (now - seen.reported < (this.#options.reportEveryMs ?? 10_000)) return;
    this.#options.onTrouble?.({ kind, count: seen.count, open: this.#open.size, message: seen.message });
    seen.reported = now;
    seen.count = 0;
  }

  async shutdown(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#sweeper.cancel();
      this.#waiting.close();
      try {
        this.#listener.close();
      } catch {
        // closed already
      }
    }
    await this.#accepting;
    await Promise.all([...this.#open].map((open) => open.server?.shutdown().catch(() => {})));
    // After the drain, the WebSocket sessions still open are told the server is going away.
    await Promise.all([...this.#open].map((open) => open.socket && goingAway(open.socket)));
    // Only now: a request still answered in the drain may upgrade (upgrade.ts searches the counted servers).
    this.#uncount();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // closed already
  }
}
