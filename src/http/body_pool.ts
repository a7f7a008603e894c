/**
 * The request body bytes the proxy holds in memory at once, on every route: one pool of
 * `general_settings.max_inflight_body_bytes`, kept across config reloads (a request still running on the old
 * config gives back into the same pool). A body read whole (JSON) is reserved by its declared length before it is
 * read (`middleware/inflight_bodies.ts`); one of unknown length (chunked) takes its bytes as they arrive
 * (`BodyHold`), since it cannot say up front how large it will be. An upload (a file, an audio or image form) is left out of that
 * reservation, since it streams upstream as it arrives: it takes from the pool only the bytes it holds
 * (`surface/upload.ts`: a small one read whole, a form read ahead to its `model` field), as it holds them.
 */

import { ProxyError } from "../errors.ts";

const SETTING = "general_settings.max_inflight_body_bytes";

export class BodyPool {
  #held = 0;
  /** Most bytes held at once (settable: a config reload changes it). */
  max: number;

  constructor(max: number) {
    this.max = max;
  }

  get held(): number {
    return this.#held;
  }

  /** Takes `bytes` when they fit beside those held; false (nothing taken) when they do not. */
  take(bytes: number): boolean {
    if (this.#held + bytes > this.max) return false;
    this.#held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#held -= bytes;
  }

  /**
   * The answer to a body of `bytes` that did not fit: 503 with `Retry-After` while it could fit once others are
   * given back; 413 when it is larger than the whole pool (no retry can pass). `advice` ends the message.
   */
  refusal(bytes: number, what: string, advice = ""): ProxyError {
    if (bytes > this.max) {
      return new ProxyError(
        413,
        "invalid_request_error",
        "request_too_large",
        `${what} (${bytes} bytes) is more than the proxy holds of request bodies at once, ${this.max} bytes ` +
          `(${SETTING})${advice && `: ${advice}`}`,
      );
    }
    return new ProxyError(
      503,
      "service_unavailable",
      "server_busy",
      `The proxy is holding ${this.#held} bytes of request bodies and uploads, and ${what} (${bytes} bytes) ` +
        `would pass the limit of ${this.max} (${SETTING}): retry shortly${advice && `; ${advice}`}`,
      { headers: { "retry-after": "1" } },
    );
  }
}

/**
 * The bytes one body of unknown length holds in a pool: taken as they arrive and given back together when its
 * request ends. A chunk that does not fit is the pool's refusal (503 with `Retry-After` while the body so far could
 * fit once others are given back; 413 when it is already larger than the whole pool).
 */
export class BodyHold {
  #held = 0;
  #released = false;

  constructor(readonly pool: BodyPool) {}

  get held(): number {
    return this.#held;
  }

  /**
   * Takes `bytes` more, or throws the refusal. A refused body gives back what it held at once, not when its
   * request has ended: bodies that grow together then make room for each other as soon as one is refused.
   */
  take(bytes: number): void {
    if (!this.#released && this.pool.take(bytes)) {
      this.#held += bytes;
      return;
    }
    const refusal = this.pool.refusal(
      this.#held + bytes,
      "this body of unknown length, as far as it has arrived,",
    );
    this.release();
    throw refusal;
  }

  /** Gives back every byte taken; later takes are refused. */
  release(): void {
    this.#released = true;
    this.pool.give(this.#held);
    this.#held = 0;
  }
}
