/**
 * What every upstream answer passes through on its way in: a cap on its (decoded) size and the masking of the
 * credentials sent with the request. One guard per request; the HTTP/1.1 client applies it as it reads the body,
 * a `fetch` answer goes through its `transform()`.
 */

import { ProxyError } from "../errors.ts";
import type { SecretMask } from "./secret_mask.ts";

export const responseTooLarge = (limit: number) =>
  new ProxyError(
    502,
    "server_error",
    "upstream_response_too_large",
    `The upstream's answer is larger than the limit of ${limit} bytes (general_settings.max_response_bytes); ` +
      "the connection to it was dropped",
  );

export class AnswerGuard {
  #seen = 0;
  #held?: Uint8Array<ArrayBuffer>;

  constructor(readonly maxBytes: number, readonly mask: SecretMask | undefined) {}

  /** Refuses an answer whose declared length is over the cap, before any of it is read. */
  checkLength(length: number): void {
    if (length > this.maxBytes) throw responseTooLarge(this.maxBytes);
  }

  /** Header values with the secrets masked; the same list when none held one (the usual case: no copy). */
  headers(list: [string, string][]): [string, string][] {
    const mask = this.mask;
    if (!mask) return list;
    let masked = list;
    for (let i = 0; i < list.length; i++) {
      const value = list[i][1];
      const text = mask.text(value);
      if (text === value) continue;
      if (masked === list) masked = list.slice();
      masked[i] = [list[i][0], text];
    }
    return masked;
  }

  /** A body that arrived whole: counted and masked in place. */
  whole(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
    this.#count(bytes.length);
    this.mask?.bytes(bytes);
    return bytes;
  }

  /**
   * The next chunk of a body, counted and masked; a few bytes that may begin a secret are held back for the next
   * chunk, so the result may be undefined (nothing to pass on yet).
   */
  chunk(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> | undefined {
    this.#count(bytes.length);
    const mask = this.mask;
    if (!mask) return bytes;
    let joined = bytes;
    if (this.#held) {
      joined = new Uint8Array(this.#held.length + bytes.length);
      joined.set(this.#held);
      joined.set(bytes, this.#held.length);
      this.#held = undefined;
    }
    mask.bytes(joined);
    const tail = mask.pendingTail(joined);
    if (tail === 0) return joined;
    this.#held = joined.slice(joined.length - tail);
    return tail === joined.length ? undefined : joined.subarray(0, joined.length - tail);
  }

  /** The bytes held back at the end of the body (they turned out not to be a secret). */
  end(): Uint8Array<ArrayBuffer> | undefined {
    const held = this.#held;
    this.#held = undefined;
    return held;
  }

  /** The guard as a stream stage, for answers the HTTP/1.1 client did not read itself. */
  transform(): TransformStream<Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>> {
    return new TransformStream({
      transform: (chunk, controller) => {
        const out = this.chunk(chunk);
        if (out) controller.enqueue(out);
      },
      flush: (controller) => {
        const out = this.end();
        if (out) controller.enqueue(out);
      },
    });
  }

  #count(length: number): void {
    this.#seen += length;
    if (this.#seen > this.maxBytes) throw responseTooLarge(this.maxBytes);
  }
}
