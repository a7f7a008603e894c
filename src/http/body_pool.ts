/**
 * The request body bytes the proxy holds in memory at once, on every route: one pool of
 * `general_settings.max_inflight_body_bytes`, kept across config reloads (a request still running on the old
 * config gives back into the same pool). A body read whole (JSON) is reserved by its declared length before it is
 * read (`middleware/inflight_bodies.ts`). An upload (a file, an audio or image form) is left out of that
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
