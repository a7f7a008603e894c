/**
 * The abort signal of one upstream call: aborted when the client leaves or when the call's timeout passes, and
 * heard by the HTTP/1.1 client (which closes the connection). Every request makes one, so it is a plain object
 * with a list of callbacks: an `AbortController` costs a controller, a signal and an `EventTarget` listener (with
 * its option parsing) per call. `fetch` needs a real `AbortSignal`: `abortSignal()` makes one that follows this.
 */

import type { AbortLike } from "../core/abort_like.ts";

export class CallSignal implements AbortLike {
  aborted = false;
  reason: unknown = undefined;
  #listeners: (() => void)[] | undefined;

  /** Aborts with `reason` (once), calling every listener. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners) { for (const listener of listeners) listener(); }
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  /** Adds `listener` (once, as an `EventTarget` does); not called if added after the abort. */
  addEventListener(_type: "abort", listener: () => void): void {
    if (this.aborted) return;
    const listeners = this.#listeners ??= [];
    if (!listeners.includes(listener)) listeners.push(listener);
  }

  removeEventListener(_type: "abort", listener: () => void): void {
    const listeners = this.#listeners;
    const at = listeners ? listeners.indexOf(listener) : -1;
    if (at >= 0) listeners!.splice(at, 1);
  }

  /** An `AbortSignal` aborted with this one (for `fetch`). */
  abortSignal(): AbortSignal {
    const controller = new AbortController();
    if (this.aborted) controller.abort(this.reason);
    else this.addEventListener("abort", () => controller.abort(this.reason));
    return controller.signal;
  }
}
