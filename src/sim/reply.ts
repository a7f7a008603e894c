/**
 * How the simulated upstream writes its answers: JSON with its headers, OpenAI error envelopes, bare statuses, SSE
 * streams that honour the run-time chunk delay, and binary streams. One instance per sim; it holds the headers added
 * to every answer.
 */

import { defaultErrorBody, errorBody } from "./content.ts";
import { frameStream } from "./frames.ts";

export class Replies {
  readonly #name: string;
  readonly #closing: AbortSignal;
  readonly #onCancel: () => void;
  #base: Record<string, string> = {};
  #json: Record<string, string> = {};
  #sse: Record<string, string> = {};

  /** `onCancel` is told when a reader leaves a stream before its end. */
  constructor(name: string, closing: AbortSignal, onCancel: () => void) {
    this.#name = name;
    this.#closing = closing;
    this.#onCancel = onCancel;
    this.setHeaders({});
  }

  /** Replaces the headers added to every answer. */
  setHeaders(headers: Readonly<Record<string, string>>): void {
    this.#base = { ...headers, "x-sim-name": this.#name };
    this.#json = { ...this.#base, "content-type": "application/json" };
    this.#sse = {
      ...this.#base,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
    };
  }

  json(status: number, value: unknown, extra?: Readonly<Record<string, string>>): Response {
    const headers = extra ? { ...this.#json, ...extra } : this.#json;
    return new Response(JSON.stringify(value), { status, headers });
  }

  /** Any body with the sim's headers and this content type. */
  raw(body: BodyInit | null, contentType: string, status = 200): Response {
    return new Response(body, { status, headers: { ...this.#base, "content-type": contentType } });
  }

  /** An `invalid_request_error` in the OpenAI envelope. */
  fail(status: number, message: string, code: string | null, param: string | null = null): Response {
    return this.json(status, errorBody(message, "invalid_request_error", code, param));
  }

  /** `value` as JSON, or a 404 naming the `what` with `id` when it is undefined. */
  found(what: string, id: string, value: unknown): Response {
    return value === undefined
      ? this.fail(404, `${what} with id '${id}' not found.`, null)
      : this.json(200, value);
  }

  /** The answer of a `status` behaviour: `body` defaults to an error envelope; a string is sent as text. */
  status(status: number, body: unknown, extra?: Readonly<Record<string, string>>): Response {
    if (status === 204 || status === 205 || status === 304) {
      return new Response(null, { status, headers: { ...this.#base, ...extra } });
    }
    if (typeof body === "string") {
      const headers = { ...this.#json, "content-type": "text/plain; charset=utf-8", ...extra };
      return new Response(body, { status, headers });
    }
    return this.json(status, body === undefined ? defaultErrorBody(status, this.#name) : body, extra);
  }

  shuttingDown(): Response {
    return this.json(
      503,
      errorBody("The simulated upstream is shutting down", "server_error", "shutting_down"),
    );
  }

  /** SSE frames, one write each, `delayMs` apart; cut after `cutAfter` frames when set. */
  sse(frames: string[], delayMs: number, cutAfter?: number): Response {
    return new Response(this.frames(frames, delayMs, cutAfter), { headers: this.#sse });
  }

  /** Pieces written one by one, `delayMs` apart (an SSE body, or binary audio sent as it is made). */
  frames(pieces: readonly string[], delayMs: number, cutAfter?: number): ReadableStream<Uint8Array> {
    return frameStream(pieces, { delayMs, cutAfter, closing: this.#closing, onCancel: this.#onCancel });
  }

  /** The headers of a `malformed` answer: SSE or JSON. */
  headers(kind: "json" | "sse"): Record<string, string> {
    return kind === "json" ? this.#json : this.#sse;
  }
}
