/** The proxy's server's record of one open client connection (server.ts). */

import type { ConnectionServer } from "./engine.ts";
import type { Handler } from "./server.ts";
import { connectionRid, pinnedEngine, socketEnded, type Upgradable } from "./upgrade.ts";

/** What the connections of one server share. */
export interface Shared {
  readonly open: Set<Open>;
  readonly handler: Handler;
  /** Takes a connection out of `open` and gives its place to one waiting for it. */
  readonly release: (open: Open) => void;
  /** The sweep's clock. */
  tick: number;
  /** Requests taken on all the connections, and those whose answer has not been sent yet (settle.ts reads them). */
  requests: number;
  inflight: number;
}

/**
 * One open client connection: counts its requests until their answers have been sent (the sweep leaves it alone
 * meanwhile) and owns a WebSocket upgraded on it. A class with three callbacks, not a literal with five closures:
 * every open stream on its own connection keeps one.
 *
 * It is also what the engine takes as its abort signal: the engine only adds an "abort" listener to that (its
 * forced close), kept here and called by `close`, so a connection needs no `AbortController` of its own (with its
 * `AbortSignal` and event listener list; bench/RESULTS.md, "Session 16: the accept loop").
 */
export class Open implements Upgradable {
  inflight = 0;
  served = 0;
  /** Sweep tick at which it last became idle (or was accepted). */
  idleSince: number;
  server?: ConnectionServer;
  /** A WebSocket upgraded on it: the connection is the socket's from then on (upgrade.ts). */
  socket?: WebSocket;
  readonly remote: Deno.NetAddr;
  readonly rid: number | undefined;
  engine: number | undefined;
  #close: (() => void) | undefined;
  readonly #shared: Shared;

  constructor(shared: Shared, conn: Deno.TcpConn) {
    this.#shared = shared;
    this.idleSince = shared.tick;
    this.remote = conn.remoteAddr;
    this.rid = connectionRid(conn);
    shared.open.add(this);
  }

  /** Right after the connection was handed to the engine (upgrade.ts, `pinnedEngine`). */
  pin(): void {
    this.engine = pinnedEngine();
  }

  /** The engine's handler for this connection. */
  readonly handler: Handler = (request, info) => {
    this.inflight++;
    this.served++;
    this.#shared.requests++;
    this.#shared.inflight++;
    info.completed.then(this.#answered, this.#answered);
    return this.#shared.handler(request, info);
  };

  readonly #answered = () => {
    this.inflight--;
    this.#shared.inflight--;
    this.idleSince = this.#shared.tick;
  };

  /** The engine is done with the connection. */
  readonly ended = () => {
    this.#close = undefined;
    if (!this.socket) this.#shared.release(this);
  };

  /** The engine registers its forced close (as on an `AbortSignal`). */
  addEventListener(_type: "abort", listener: () => void): void {
    this.#close = listener;
  }

  /** Closes the connection at once (the engine's forced close); nothing once the engine is done with it. */
  close(): void {
    const close = this.#close;
    this.#close = undefined;
    try {
      close?.();
    } catch {
      // closed already
    }
  }

  adopt(socket: WebSocket): void {
    // The connection is the socket's now: counted until it closes, never swept as idle.
    this.socket = socket;
    socketEnded(socket).then(() => this.#shared.release(this));
  }
}
