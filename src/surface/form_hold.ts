/**
 * Bytes of forms held across requests while each is read up to its `model` field (`openForm`): a form may send its
 * file first (the openai Node SDK sends fields in the order they are given, `file` usually first), and each such
 * form is held up to 32 MiB until its `model` arrives. The request-body bound of `max_inflight_body_bytes` leaves
 * uploads out (they are not bounded by `max_body_bytes`), so these held bytes have one of their own, as large. Small
 * uploads read whole first (`openUpload`: a file, a form whose group is named by the header) are counted here too.
 */

import { ProxyError } from "../errors.ts";

export class FormHold {
  #held = 0;
  /** Most bytes held at once (settable: a config reload changes it). */
  max: number;

  constructor(max: number) {
    this.max = max;
  }

  get held(): number {
    return this.#held;
  }

  /** Takes `bytes` more, or throws a 503 `server_busy` (with `Retry-After`) when they do not fit. */
  take(bytes: number): void {
    if (this.#held + bytes > this.max) {
      throw new ProxyError(
        503,
        "service_unavailable",
        "server_busy",
        `The proxy is holding ${this.#held} bytes of uploads read ahead (forms up to their 'model' field, small ` +
          `ones whole), and this one would pass the limit of ${this.max} (general_settings.max_inflight_body_bytes):` +
          " retry shortly; for a form, send 'model' before the file, or the model group in the" +
          " x-llmproxy-model-group header",
        { headers: { "retry-after": "1" } },
      );
    }
    this.#held += bytes;
  }

  give(bytes: number): void {
    this.#held -= bytes;
  }
}
