/**
 * Connections accepted while the proxy's server is at `maxConnections` (server.ts): each waits a short while for a
 * place, unread, and is served as soon as one frees up; past its wait it is closed.
 *
 * Why not refuse at once: when a flood of connections ends, the server learns of their closes a little later (its
 * engine reads each one's end), so a client that connects right then would be refused although places are about
 * to free up. Why not wait in the accept loop (it used to pause 1 ms before each refusal): on a loaded machine
 * that pause took ~5 ms, the loop refused ~200 connections a second, the kernel's accept queue (511) stayed full
 * through a flood, and when the flood ended the fresh client queued behind ~500-1,000 connections already closed
 * by their clients, each taking a freed place first and served to its end one by one (over 2.5 s in about one run
 * in ten of tests/e2e/connection_limits_test.ts). Here the loop keeps accepting at full speed: at most `max`
 * connections wait, the longest-waiting one is closed when another comes, so the accept queue stays short.
 */

import { startTimer, type Timer } from "../util/timer.ts";

interface Entry {
  readonly conn: Deno.TcpConn;
  readonly until: number;
}

export class Waiting {
  readonly #entries: Entry[] = [];
  readonly #max: number;
  readonly #waitMs: number;
  readonly #refuse: (conn: Deno.TcpConn) => void;
  #timer: Timer | undefined;

  /** `refuse` closes a connection that waited too long or was pushed out by a newer one. */
  constructor(max: number, waitMs: number, refuse: (conn: Deno.TcpConn) => void) {
    this.#max = max;
    this.#waitMs = waitMs;
    this.#refuse = refuse;
  }

  get size(): number {
    return this.#entries.length;
  }

  add(conn: Deno.TcpConn): void {
    if (this.#max < 1 || this.#waitMs <= 0) return this.#refuse(conn);
    if (this.#entries.length >= this.#max) this.#refuse(this.#entries.shift()!.conn);
    this.#entries.push({ conn, until: performance.now() + this.#waitMs });
    this.#timer ??= startTimer(this.#waitMs, this.#expire);
  }

  /** The longest-waiting connection, to be served now. */
  take(): Deno.TcpConn | undefined {
    const entry = this.#entries.shift();
    if (this.#entries.length === 0) this.#stop();
    return entry?.conn;
  }

  /** Closes every waiting connection (shutdown). */
  close(): void {
    this.#stop();
    for (const entry of this.#entries.splice(0)) this.#refuse(entry.conn);
  }

  readonly #expire = () => {
    this.#timer = undefined;
    const now = performance.now();
    while (this.#entries.length > 0 && this.#entries[0].until <= now) {
      this.#refuse(this.#entries.shift()!.conn);
    }
    if (this.#entries.length > 0) this.#timer = startTimer(this.#entries[0].until - now, this.#expire);
  };

  #stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }
}
