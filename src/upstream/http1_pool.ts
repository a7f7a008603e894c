/**
 * The kept-alive connections of the HTTP/1.1 client (http1.ts) parked for reuse, per origin: the most recently
 * parked is taken first; one a server closed or spoke on while parked, or past its age, is closed instead (by the
 * taker, or by a sweep that neither it nor the parked connections' reads keep the process alive for).
 */

import type { Connection } from "./http1_connection.ts";
import { startTimer, type Timer } from "../util/timer.ts";

export class IdlePool {
  readonly #idleMs: number;
  readonly #idle = new Map<string, Connection[]>();
  #sweeper?: Timer;

  /** `idleMs`: the longest a connection is kept parked. */
  constructor(idleMs: number) {
    this.#idleMs = idleMs;
  }

  /** Connections parked now. */
  get size(): number {
    let count = 0;
    for (const list of this.#idle.values()) count += list.length;
    return count;
  }

  /** The most recently parked connection that is still good: not expired, not closed or spoken to by the server. */
  take(origin: string): Connection | undefined {
    const list = this.#idle.get(origin);
    if (!list) return undefined;
    const now = performance.now();
    let connection: Connection | undefined;
    while ((connection = list.pop())) {
      if (connection.reusable && connection.expiresAt > now) return connection;
      connection.close();
    }
    return undefined;
  }

  /** Parks `connection`, or closes it when it cannot be kept (the server's `keep-alive: timeout=N` is too short). */
  park(connection: Connection, keepAliveMs: number): void {
    // The server's own idle timeout, less a second, if it is shorter than ours.
    const idleMs = Math.min(this.#idleMs, keepAliveMs - 1000);
    if (idleMs <= 0 || !connection.reusable) return connection.close();
    let list = this.#idle.get(connection.origin);
    if (!list) this.#idle.set(connection.origin, list = []);
    connection.idle(performance.now() + idleMs);
    list.push(connection);
    this.#sweeper ??= this.#startSweeper();
  }

  /** Closes every parked connection. */
  close(): void {
    this.#sweeper?.cancel();
    this.#sweeper = undefined;
    for (const list of this.#idle.values()) for (const connection of list) connection.close();
    this.#idle.clear();
  }

  #startSweeper(): Timer {
    // Neither the sweeper nor the parked connections' reads keep the process alive.
    return startTimer(Math.max(1000, this.#idleMs / 2), () => {
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
        this.#sweeper?.cancel();
        this.#sweeper = undefined;
      }
    }, { repeat: true, ref: false });
  }
}
