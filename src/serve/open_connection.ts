/** The proxy's server's record of one open client connection (server.ts). */

import type { ConnectionServer, Handler } from "./server.ts";
import { socketEnded, type SocketOwner, type UpgradeWatch } from "./upgrade.ts";

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
 */
export class Open implements SocketOwner {
  inflight = 0;
  served = 0;
  /** Sweep tick at which it last became idle (or was accepted). */
  idleSince: number;
  readonly abort = new AbortController();
  server?: ConnectionServer;
  watch?: UpgradeWatch;
  /** A WebSocket upgraded on it: the connection is the socket's from then on (upgrade.ts). */
  socket?: WebSocket;
  readonly #shared: Shared;

  constructor(shared: Shared) {
    this.#shared = shared;
    this.idleSince = shared.tick;
    shared.open.add(this);
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
    this.watch?.end();
    if (!this.socket) this.#shared.release(this);
  };

  adopt(socket: WebSocket): void {
    // The connection is the socket's now: counted until it closes, never swept as idle.
    this.socket = socket;
    socketEnded(socket).then(() => this.#shared.release(this));
  }
}
