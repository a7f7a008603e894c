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

import { chatCompletion, chatStreamFrames } from "./chat.ts";
import { defaultErrorBody, errorBody, isObject, Rejection, type SimContext } from "./content.ts";
import { embeddingList } from "./embeddings.ts";
import { cutStream, frameStream, pause } from "./frames.ts";
import { ResponseBook, responseStreamFrames } from "./responses.ts";
import { route } from "./route.ts";

/** What the sim does with a request. */
export type Behaviour =
  /** Answer normally. */
  | { readonly kind: "ok" }
  /** Answer with this status; `body` defaults to an OpenAI error envelope (a string is sent as is). */
  | {
    readonly kind: "status";
    readonly status: number;
    readonly body?: unknown;
    readonly headers?: Readonly<Record<string, string>>;
  }
  /** Accept and never answer, until the client aborts or the sim closes. */
  | { readonly kind: "hang" }
  /** Stream: send `afterChunks` SSE frames (never the last) then cut the connection. Otherwise: 200, no body. */
  | { readonly kind: "cut"; readonly afterChunks: number }
  /** 200 with a body that is not valid JSON (or SSE data that is not). */
  | { readonly kind: "malformed" };

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
}

export type AuthKind = "bearer" | "api-key";

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  /** The query string with its `?`, or "". */
  readonly search: string;
  /** Lower-cased names. */
  readonly headers: Readonly<Record<string, string>>;
  /** Parsed JSON, else the raw text; undefined without a body. */
  readonly body: unknown;
  /** Which credential header came: `api-key` wins when both did. */
  readonly auth: AuthKind | null;
  /** `Date.now()` on arrival. */
  readonly at: number;
}

const OK: Behaviour = { kind: "ok" };
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
  readonly #book = new ResponseBook();
  readonly #model: string;
  readonly #created = Math.floor(Date.now() / 1000);
  readonly #quiet: boolean;
  readonly #id: (prefix: string) => string;
  #queue: Behaviour[] = [];
  #always: Behaviour = OK;
  #responseHeaders: Readonly<Record<string, string>> = {};
  #jsonHeaders: Record<string, string> = {};
  #sseHeaders: Record<string, string> = {};
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
          return this.#json(500, errorBody("The simulated upstream failed", "server_error", "server_error"));
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
    const base = { ...headers, "x-sim-name": this.name };
    this.#jsonHeaders = { ...base, "content-type": "application/json" };
    this.#sseHeaders = {
      ...base,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
    };
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
    this.#book.clear();
  }

  /** Ends hanging and delayed answers, then stops the server. Safe to call twice. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort();
      await this.#server.shutdown();
    })();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const text = await request.text();
    let body: unknown = undefined;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    const headers = request.headers;
    const auth: AuthKind | null = headers.has("api-key")
      ? "api-key"
      : /^Bearer \S/i.test(headers.get("authorization") ?? "")
      ? "bearer"
      : null;
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
    if (this.latencyMs > 0) {
      // Finite, so it does not watch request.signal: touching that makes Deno print its legacy-abort notice.
      await pause(this.latencyMs, this.#closing.signal);
      if (this.#closing.signal.aborted) return this.#shuttingDown();
    }
    const stream = isObject(body) && body.stream === true;
    switch (behaviour.kind) {
      case "status":
        return this.#status(behaviour.status, behaviour.body, behaviour.headers);
      case "hang":
        await pause(Infinity, request.signal, this.#closing.signal);
        return this.#shuttingDown();
      case "malformed":
        return stream
          ? new Response(MALFORMED_SSE, { headers: this.#sseHeaders })
          : new Response(MALFORMED_JSON, { headers: this.#jsonHeaders });
      case "cut":
        if (!stream) return new Response(cutStream(), { headers: this.#jsonHeaders });
    }
    if (auth === null) {
      const message =
        "You didn't provide an API key: send 'Authorization: Bearer KEY' or an 'api-key' header.";
      return this.#fail(401, message, "invalid_api_key");
    }
    try {
      return this.#answer(url, request.method, body, text.length, behaviour);
    } catch (error) {
      if (error instanceof Rejection) return this.#json(error.status, error.body);
      throw error;
    }
  }

  #answer(url: URL, method: string, body: unknown, bodyLength: number, behaviour: Behaviour): Response {
    const target = route(method, url.pathname);
    if (!target) {
      return this.#fail(404, `Unknown route ${method} ${url.pathname} on sim '${this.name}'`, null);
    }
    if (target.layout === "azure" && !url.searchParams.has("api-version")) {
      return this.#fail(400, "Missing required query parameter 'api-version'", "missing_api_version");
    }
    const ctx: SimContext = { name: this.name, id: this.#id, chunks: this.chunks, bodyLength };
    const cutAfter = behaviour.kind === "cut" ? behaviour.afterChunks : undefined;
    switch (target.kind) {
      case "models":
        return this.#json(200, {
          object: "list",
          data: [{ id: this.#model, object: "model", created: this.#created, owned_by: `sim-${this.name}` }],
        });
      case "response":
        return this.#found(target.id, this.#book.get(target.id));
      case "delete-response": {
        const deleted = this.#book.delete(target.id);
        return this.#found(
          target.id,
          deleted ? { id: target.id, object: "response.deleted", deleted } : undefined,
        );
      }
      case "cancel-response":
        return this.#found(target.id, this.#book.cancel(target.id));
      case "input-items":
        return this.#found(target.id, this.#book.inputItems(target.id, url.searchParams));
    }
    if (!isObject(body)) {
      return this.#fail(400, "We could not parse the JSON body of your request.", "invalid_json");
    }
    const stream = body.stream === true;
    if (target.kind === "responses") {
      const response = this.#book.create(body, ctx, stream);
      return stream
        ? this.#sse(responseStreamFrames(response, ctx.chunks), cutAfter)
        : this.#json(200, response);
    }
    const model = target.deployment ?? (typeof body.model === "string" ? body.model : "");
    if (model === "") return this.#fail(400, "You must provide a model parameter.", "missing_model", "model");
    if (target.kind === "embeddings") return this.#json(200, embeddingList(body, model));
    return stream
      ? this.#sse(chatStreamFrames(body, model, ctx), cutAfter)
      : this.#json(200, chatCompletion(body, model, ctx));
  }

  #found(id: string, value: unknown): Response {
    return value === undefined
      ? this.#fail(404, `Response with id '${id}' not found.`, null)
      : this.#json(200, value);
  }

  /** An `invalid_request_error` in the OpenAI envelope. */
  #fail(status: number, message: string, code: string | null, param: string | null = null): Response {
    return this.#json(status, errorBody(message, "invalid_request_error", code, param));
  }

  #json(status: number, value: unknown, extra?: Readonly<Record<string, string>>): Response {
    const headers = extra ? { ...this.#jsonHeaders, ...extra } : this.#jsonHeaders;
    return new Response(JSON.stringify(value), { status, headers });
  }

  #status(status: number, body: unknown, extra?: Readonly<Record<string, string>>): Response {
    if (status === 204 || status === 205 || status === 304) {
      return new Response(null, {
        status,
        headers: { ...this.#responseHeaders, "x-sim-name": this.name, ...extra },
      });
    }
    if (typeof body === "string") {
      const headers = { ...this.#jsonHeaders, "content-type": "text/plain; charset=utf-8", ...extra };
      return new Response(body, { status, headers });
    }
    return this.#json(status, body === undefined ? defaultErrorBody(status, this.name) : body, extra);
  }

  #shuttingDown(): Response {
    return this.#json(
      503,
      errorBody("The simulated upstream is shutting down", "server_error", "shutting_down"),
    );
  }

  #sse(frames: string[], cutAfter?: number): Response {
    const body = frameStream(frames, {
      delayMs: this.chunkDelayMs,
      cutAfter,
      closing: this.#closing.signal,
      onCancel: () => this.cancelledStreams++,
    });
    return new Response(body, { headers: this.#sseHeaders });
  }
}
