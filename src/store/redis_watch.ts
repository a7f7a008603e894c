/**
 * Watches the Redis client's connection for the store: one warning when it goes, one info line when it is back,
 * the wait for the first attempt, and a close that leaves no socket or timer behind.
 */

import type { Client, StoreLogger } from "./redis_client.ts";
import { startTimer, type Timer } from "../util/timer.ts";

/** How long after ioredis gave up on its own the watch starts the client again. */
const RESTART_MS = 200;

export class ConnectionWatch {
  readonly #client: Client;
  /** Where we connect, without credentials, for log lines and `/health`. */
  readonly #target: string;
  readonly #log: StoreLogger;
  #down = false;
  #everReady = false;
  #closing = false;
  #restart: Timer | undefined;

  constructor(client: Client, target: string, log: StoreLogger) {
    this.#client = client;
    this.#target = target;
    this.#log = log;
    client.on("ready", () => this.#onReady());
    client.on("error", (error: Error) => {
      if (client.status !== "ready") this.#onDown(error.message);
    });
    client.on("close", () => this.#onDown("connection closed"));
    client.on("end", () => this.#onEnd());
  }

  /** The whole client's target while it is not connected; nothing while it is. */
  nodesDown(): string[] {
    return this.#client.status === "ready" ? [] : [this.#target];
  }

  /** Resolves once the first connection attempt succeeded or failed (or after a safety timeout). */
  firstAttempt(timeoutMs: number): Promise<void> {
    const client = this.#client;
    if (client.status === "ready") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        timer.cancel();
        client.off("ready", done).off("error", done).off("close", done);
        resolve();
      };
      const timer = startTimer(timeoutMs + 500, done);
      client.on("ready", done).on("error", done).on("close", done);
    });
  }

  /** Quits (or drops a connection that is not up) and waits until the socket and every timer are gone. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#restart?.cancel();
    const client = this.#client;
    if (client.status === "end") return;
    const ended = new Promise<void>((resolve) => client.once("end", () => resolve()));
    if (client.status === "ready") {
      try {
        // QUIT is written at once, ahead of auto-pipelined commands still queued; a PING is queued behind them,
        // so once it is answered they all are.
        await client.ping().catch(() => {});
        await client.quit();
      } catch {
        client.disconnect();
      }
    } else {
      client.disconnect();
      // Between reconnect attempts there is no socket: ioredis clears its timer but never emits "end".
      if (client.status === "reconnecting") return;
    }
    await ended;
  }

  #onReady(): void {
    if (this.#down) {
      this.#log("info", this.#everReady ? "Redis connection restored" : "Redis connected", {
        target: this.#target,
      });
    }
    this.#down = false;
    this.#everReady = true;
  }

  /**
   * The client ended without being closed: ioredis stops reconnecting for good when its connector is closed under
   * an attempt in flight. A Sentinel's failover message does that (ioredis's failover detector of the lost
   * connection closes the connector), so on a loaded machine, where resolving the master through the sentinels
   * takes a while, the proxy stayed on local state after a failover. The watch starts the client again.
   */
  #onEnd(): void {
    if (this.#closing) return;
    this.#onDown("connection ended");
    this.#restart?.cancel();
    this.#restart = startTimer(RESTART_MS, () => {
      this.#restart = undefined;
      if (!this.#closing && this.#client.status === "end") this.#client.connect().catch(() => {});
    });
  }

  #onDown(reason: string): void {
    if (this.#down || this.#closing) return;
    this.#down = true;
    const message = this.#everReady ? "Redis connection lost" : "Redis unreachable";
    this.#log("warn", `${message}; serving local state and retrying`, { target: this.#target, reason });
  }
}
