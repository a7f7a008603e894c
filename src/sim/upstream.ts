/**
 * A simulated OpenAI / Azure OpenAI upstream on `Deno.serve`: the fake endpoint of the proxy's tests (fault
 * injection, request recording), the upstream of `deno task demo` and of the bench. Web standards only and no file
 * reads, so it works inside a `deno compile`d binary; the default happy path does little more than parse the body.
 *
 * ```ts
 * await using sim = await SimUpstream.start({ name: "east", quiet: true });
 * sim.next({ kind: "status", status: 429, headers: { "retry-after": "2" } }); // the next request gets a 429
 * ```
 */

import { authKind, type Behaviour, OK, type RecordedRequest } from "./behaviour.ts";
import { errorBody, Rejection } from "./content.ts";
import { dispatch, type SimState } from "./dispatch.ts";
import { cutStream, pause } from "./frames.ts";
import { boundaryOf } from "../multipart/scanner.ts";
import { BatchBook } from "./batches.ts";
import { FileBook } from "./files.ts";
import { formRecord, readForm, type SimForm } from "./form.ts";
import type { RealtimeSockets } from "./realtime.ts";
import { Replies } from "./reply.ts";
import { ResponseBook } from "./responses.ts";

export type { AuthKind, Behaviour, RecordedRequest } from "./behaviour.ts";

export interface SimUpstreamOptions {
  /** Shown in answers (`[east] echo: hi`), ids and the `x-sim-name` header. Default `sim`. */
  readonly name?: string;
  /** Default `127.0.0.1`. */
  readonly hostname?: string;
  /** Default 0: a free port. */
  readonly port?: number;
  /** Content (or tool-argument) delta chunks per stream. Default 5. */
  readonly chunks?: number;
  /** Pause before each stream frame after the first. Default 0. */
  readonly chunkDelayMs?: number;
  /** Pause before answering anything. Default 0. */
  readonly latencyMs?: number;
  /** Added to every answer, e.g. `x-ratelimit-remaining-requests`. */
  readonly responseHeaders?: Readonly<Record<string, string>>;
  /** Keep every request in `requests`. Default true; turn off for benchmarks. */
  readonly record?: boolean;
  /** The model listed by `GET /models`. Default `gpt-4o-mini`. */
  readonly model?: string;
  /** No start-up line and no error logs on stderr. Default false. */
  readonly quiet?: boolean;
  /** Lists take any `limit` and `order` (an older or lenient API), where OpenAI refuses out of bounds. */
  readonly lenientLists?: boolean;
}

const MALFORMED_JSON = '{"id": "chatcmpl-malformed", "choices": [{"message": ';
const MALFORMED_SSE = 'data: {"id": "chatcmpl-malformed", "choices": [{"delta": \n\ndata: [DONE]\n\n';

export class SimUpstream implements AsyncDisposable {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[] = [];
  /** Run-time settings, read when a request arrives. */
  chunks: number;
  chunkDelayMs: number;
  latencyMs: number;
  record: boolean;
  /** Streams whose reader went away before their end (a client disconnect reaching the upstream). */
  cancelledStreams = 0;

  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #closing = new AbortController();
  readonly #replies: Replies;
  readonly #books = { responses: new ResponseBook(), files: new FileBook(), batches: new BatchBook() };
  readonly #sockets: RealtimeSockets = { open: new Set(), opened: 0 };
  readonly #model: string;
  readonly #created = Math.floor(Date.now() / 1000);
  readonly #quiet: boolean;
  readonly #lenientLists: boolean;
  readonly #id: (prefix: string) => string;
  #queue: Behaviour[] = [];
  #always: Behaviour = OK;
  #responseHeaders: Readonly<Record<string, string>> = {};
  #closed: Promise<void> | undefined;

  /** Starts listening; `url` is ready when the promise resolves. Rejects when the address cannot be bound. */
  static start(options: SimUpstreamOptions = {}): Promise<SimUpstream> {
    try {
      return Promise.resolve(new SimUpstream(options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private constructor(options: SimUpstreamOptions) {
    this.name = options.name ?? "sim";
    this.chunks = options.chunks ?? 5;
    this.chunkDelayMs = options.chunkDelayMs ?? 0;
    this.latencyMs = options.latencyMs ?? 0;
    this.record = options.record ?? true;
    this.#model = options.model ?? "gpt-4o-mini";
    this.#quiet = options.quiet ?? false;
    this.#lenientLists = options.lenientLists ?? false;
    this.#replies = new Replies(this.name, this.#closing.signal, () => this.cancelledStreams++);
    this.responseHeaders = options.responseHeaders ?? {};
    const idName = this.name.replace(/[^A-Za-z0-9-]/g, "-");
    const tag = crypto.randomUUID().slice(0, 4);
    let sequence = 0;
    this.#id = (prefix) => `${prefix}_${idName}_${tag}_${++sequence}`;

    const hostname = options.hostname ?? "127.0.0.1";
    const port = options.port ?? 0;
    try {
      this.#server = Deno.serve({
        hostname,
        port,
        onListen: () => {},
        onError: (error) => {
          if (!this.#quiet) console.error(`sim upstream '${this.name}' failed:`, error);
          return this.#replies.json(
            500,
            errorBody("The simulated upstream failed", "server_error", "server_error"),
          );
        },
      }, (request) => this.#handle(request));
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`Cannot start sim upstream '${this.name}' on ${hostname}:${port}: ${reason}`, {
        cause: error,
      });
    }
    this.port = this.#server.addr.port;
    const host = hostname === "0.0.0.0" ? "127.0.0.1" : hostname.includes(":") ? `[${hostname}]` : hostname;
    this.url = `http://${host}:${this.port}`;
    if (!this.#quiet) console.error(`sim upstream '${this.name}' ready at ${this.url}`);
  }

  get responseHeaders(): Readonly<Record<string, string>> {
    return this.#responseHeaders;
  }

  /** Replaces the headers added to every answer. */
  set responseHeaders(headers: Readonly<Record<string, string>>) {
    this.#responseHeaders = { ...headers };
    this.#replies.setHeaders(headers);
  }

  /** Realtime WebSocket sessions open now, and ever opened. */
  get realtime(): { readonly open: number; readonly opened: number } {
    return { open: this.#sockets.open.size, opened: this.#sockets.opened };
  }

  /** Recorded requests, all or those whose path contains `pathIncludes`. */
  count(pathIncludes?: string): number {
    if (pathIncludes === undefined) return this.requests.length;
    return this.requests.filter((r) => r.path.includes(pathIncludes)).length;
  }

  /** The most recent recorded request. */
  get last(): RecordedRequest | undefined {
    return this.requests.at(-1);
  }

  /** Queues one-shot behaviours, consumed in order by the next requests. */
  next(...behaviours: Behaviour[]): void {
    this.#queue.push(...behaviours);
  }

  /** The behaviour once the queue is empty (initially `ok`). */
  always(behaviour: Behaviour): void {
    this.#always = behaviour;
  }

  /** Forgets recorded requests, queued behaviours and remembered responses; behaviour back to `ok`. */
  reset(): void {
    this.requests.length = 0;
    this.#queue = [];
    this.#always = OK;
    for (const book of Object.values(this.#books)) book.clear();
  }

  /** Ends hanging and delayed answers, then stops the server. Safe to call twice. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort();
      for (const socket of this.#sockets.open) socket.close(1001, "sim closing");
      await this.#server.shutdown();
    })();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const headers = request.headers;
    const boundary = boundaryOf(headers.get("content-type"));
    let form: SimForm | undefined;
    let body: unknown = undefined;
    let bodyLength = 0;
    if (boundary) {
      try {
        form = await readForm(request.body, boundary);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return this.#replies.fail(400, `Malformed multipart body: ${message}`, "invalid_multipart");
      }
      body = formRecord(form);
      bodyLength = form.length;
    } else {
      const text = await request.text();
      bodyLength = text.length;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
    }
    const auth = authKind(headers);
    if (this.record) {
      this.requests.push({
        method: request.method,
        path: url.pathname,
        search: url.search,
        headers: Object.fromEntries(headers),
        body,
        auth,
        at: Date.now(),
      });
    }
    const behaviour = this.#queue.shift() ?? this.#always;
    const replies = this.#replies;
    if (this.latencyMs > 0) {
      // Finite, so it does not watch request.signal: touching that makes Deno print its legacy-abort notice.
      await pause(this.latencyMs, this.#closing.signal);
      if (this.#closing.signal.aborted) return replies.shuttingDown();
    }
    const stream = typeof body === "object" && body !== null && "stream" in body && body.stream === true;
    switch (behaviour.kind) {
      case "status":
        return replies.status(behaviour.status, behaviour.body, behaviour.headers);
      case "hang":
        await pause(Infinity, request.signal, this.#closing.signal);
        return replies.shuttingDown();
      case "malformed":
        return stream
          ? new Response(MALFORMED_SSE, { headers: replies.headers("sse") })
          : new Response(MALFORMED_JSON, { headers: replies.headers("json") });
      case "cut":
        if (!stream) return new Response(cutStream(), { headers: replies.headers("json") });
    }
    if (auth === null) {
      const message =
        "You didn't provide an API key: send 'Authorization: Bearer KEY' or an 'api-key' header.";
      return replies.fail(401, message, "invalid_api_key");
    }
    try {
      const cutAfter = behaviour.kind === "cut" ? behaviour.afterChunks : undefined;
      return dispatch(this.#state(), { request, url, body, form, bodyLength, cutAfter });
    } catch (error) {
      if (error instanceof Rejection) return replies.json(error.status, error.body);
      throw error;
    }
  }

  #state(): SimState {
    return {
      name: this.name,
      replies: this.#replies,
      ...this.#books,
      sockets: this.#sockets,
      model: this.#model,
      created: this.#created,
      chunks: this.chunks,
      chunkDelayMs: this.chunkDelayMs,
      id: this.#id,
      lenientLists: this.#lenientLists,
    };
  }
}
