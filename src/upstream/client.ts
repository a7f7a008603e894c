/**
 * One call to one upstream endpoint: URL and auth from the provider table, a total timeout, and the client's abort
 * signal forwarded so a client that leaves cancels the upstream request.
 */

import type { HeaderReader } from "../core/header_reader.ts";
import type { AzureAdConfig, EndpointConfig } from "../config/config.ts";
import { deadlines } from "../util/deadlines.ts";
import type { AttemptObserver } from "./attempt.ts";
import { Http1Agent, type Http1Init } from "./http1.ts";
import { connectionMessage } from "./connection_message.ts";
import { RequestBodyFailed, type StreamedBody } from "./http1_chunked.ts";
import { upstreamHeaders, upstreamUrl } from "./providers.ts";
import type { EntraTokens } from "../entra/entra_tokens.ts";
import { ProxyError } from "../errors.ts";
import { AnswerGuard } from "./answer_guard.ts";
import { neverConnected } from "./http1_connect.ts";
import { SecretMask } from "./secret_mask.ts";
import type { Reply } from "./reply.ts";
import { fetchStreamed, fetchWhole, guardedFetch } from "./fetch_transport.ts";
import type { AbortLike } from "../core/abort_like.ts";
import { CallSignal } from "./call_signal.ts";

/** Which HTTP client carries upstream calls (`general_settings.upstream_client`). */
export type UpstreamClientKind = "http1" | "fetch";

type Transport = (url: string, init: Http1Init & { readonly signal: CallSignal }) => Promise<Reply>;

/** Limits of upstream calls; settable, so a config reload changes them without dropping the pool. */
export interface UpstreamLimits {
  /** Bytes of one answer (decoded); over it the answer fails with a 502 and its connection is dropped. */
  readonly maxResponseBytes: number;
  /** How long opening a connection may take (the `http1` client; `fetch` has only the total timeout). */
  readonly connectTimeoutMs: number;
  /** Connections the `http1` client keeps open for reuse at most (`connection_budget.ts`). */
  readonly maxOpenConnections: number;
}

const DEFAULT_LIMITS: UpstreamLimits = {
  maxResponseBytes: 64 * 1024 * 1024,
  connectTimeoutMs: 10_000,
  maxOpenConnections: 1024,
};

export interface UpstreamRequest {
  readonly endpoint: EndpointConfig;
  readonly method: "GET" | "POST" | "DELETE";
  /** Path below `/v1`, e.g. `chat/completions`. */
  readonly path: string;
  /** Query string to append (without `?`), e.g. for `input_items` paging. */
  readonly query?: string;
  /** A stream (an upload passed through as it arrives) always goes through fetch: the http1 client sends strings. */
  readonly body?: string | ReadableStream<Uint8Array> | StreamedBody;
  /** The body's content type; default `application/json`. */
  readonly contentType?: string;
  readonly clientHeaders: HeaderReader;
  readonly requestId: string;
  /** The client's signal: aborted when the client disconnects (or every client following a coalesced flight). */
  readonly signal: AbortLike;
  /** Makes something upstream each time it is received: never sent twice by the client (`Http1Init.once`). */
  readonly once?: boolean;
}

export type UpstreamResult =
  | {
    readonly kind: "response";
    readonly response: Reply;
    /** Clears the timeout and the client-abort listener; call once the body is read or given up. */
    readonly release: () => void;
  }
  | { readonly kind: "timeout" }
  | { readonly kind: "aborted" }
  /** `unsent`: no connection was made (refused, connect timeout, no name, no TLS, no token): nothing went. */
  | { readonly kind: "connection"; readonly message: string; readonly unsent?: boolean };

export class UpstreamClient {
  readonly kind: UpstreamClientKind;
  readonly #agent?: Http1Agent;
  readonly #send: Transport;
  /** Hears every attempt (dashboard histories, tracing). */
  readonly observer?: AttemptObserver;
  readonly #masks = new WeakMap<
    EndpointConfig,
    { readonly auth?: string; readonly apiKey?: string; readonly mask?: SecretMask }
  >();
  #limits: UpstreamLimits = DEFAULT_LIMITS;

  /** Entra ID tokens for endpoints with `params.azure_ad`. */
  readonly #tokens?: EntraTokens;

  constructor(kind: UpstreamClientKind = "http1", observer?: AttemptObserver, tokens?: EntraTokens) {
    this.kind = kind;
    this.observer = observer;
    this.#tokens = tokens;
    if (kind === "fetch") this.#send = fetchWhole;
    else {
      this.#agent = new Http1Agent();
      this.#send = this.#agent.request;
    }
  }
  get limits(): UpstreamLimits {
    return this.#limits;
  }
  setLimits(limits: UpstreamLimits): void {
    this.#limits = limits;
    if (!this.#agent) return;
    this.#agent.connectTimeoutMs = limits.connectTimeoutMs;
    this.#agent.maxOpen = limits.maxOpenConnections;
  }

  /** Upstream connections the `http1` client opened (0 with `fetch`, which does not tell). */
  get connectionsOpened(): number {
    return this.#agent?.connectionsOpened ?? 0;
  }

  /** Idle kept-alive connections (the `http1` client's pool). */
  get idleConnections(): number {
    return this.#agent?.idleConnections ?? 0;
  }

  #maskFor(endpoint: EndpointConfig, headers: Record<string, string>): SecretMask | undefined {
    const auth = headers["authorization"];
    const apiKey = headers["api-key"];
    const known = this.#masks.get(endpoint);
    // The same values as last time (the usual case: the endpoint's key): the same mask.
    if (known && known.auth === auth && known.apiKey === apiKey) return known.mask;
    const mask = SecretMask.of(secretsOf(endpoint, headers));
    this.#masks.set(endpoint, { auth, apiKey, mask });
    return mask;
  }

  /** Closes the idle connections; calls still in flight finish on theirs. */
  close(): void {
    this.#agent?.close();
  }

  /**
   * A body of chunks that may share one buffer: the http1 client writes each before taking the next; fetch may
   * hold them longer, so it gets copies.
   */
  #streamed(url: string, init: Http1Init & { body: StreamedBody; signal: CallSignal }): Promise<Reply> {
    return this.#agent ? this.#agent.request(url, init) : fetchStreamed(url, init);
  }

  /**
   * The headers of a call to `endpoint` that carries no client headers (a WebSocket handshake): its extra headers,
   * its key or Entra ID token, and the request id. Not ok when no token could be had.
   */
  async handshakeHeaders(
    endpoint: EndpointConfig,
    requestId: string,
  ): Promise<
    { ok: true; headers: Record<string, string>; bearer?: string } | { ok: false; message: string }
  > {
    let bearer: string | undefined;
    if (endpoint.azureAd) {
      const got = await this.#tokens?.token(endpoint, endpoint.azureAd);
      if (!got?.ok) return { ok: false, message: got?.message ?? "Entra ID tokens are not set up" };
      bearer = got.token;
    }
    const headers = upstreamHeaders(endpoint, new Headers(), requestId, bearer);
    delete headers["content-type"];
    return { ok: true, headers, bearer };
  }

  /** `endpoint` answered 401 to its Entra ID token `bearer`: not kept until it expires (unless it is fresh). */
  tokenRefused(endpoint: EndpointConfig, bearer: string): void {
    if (endpoint.azureAd) this.#tokens?.rejected(endpoint.azureAd, bearer);
  }

  /** After a reload: the Entra ID tokens of credentials that `endpoints` no longer use are forgotten. */
  keepTokensOf(endpoints: Iterable<EndpointConfig>): void {
    this.#tokens?.keepOnly(
      Array.from(endpoints, (endpoint) => endpoint.azureAd).filter((ad) => ad !== undefined),
    );
  }

  /**
   * Sends the request. The returned response's body is still tied to the timeout and the client's signal, so a
   * stream is cut when either fires. Call `release` once the body has been read or given up: it clears the timer
   * (an uncleared one would keep the request's objects alive for the whole timeout).
   */
  send(request: UpstreamRequest): Promise<UpstreamResult> {
    const { azureAd } = request.endpoint;
    return azureAd ? this.#sendWithToken(request, azureAd) : this.#call(request, undefined);
  }

  async #sendWithToken(request: UpstreamRequest, azureAd: AzureAdConfig): Promise<UpstreamResult> {
    // No token is the endpoint's failure, like a refused connection (the token source logged why).
    const got = await this.#tokens?.token(request.endpoint, azureAd);
    if (!got?.ok) {
      return { kind: "connection", message: got?.message ?? "Entra ID tokens are not set up", unsent: true };
    }
    const result = await this.#call(request, got.token);
    // A token the endpoint rejects (revoked, or the identity changed) is not kept until it expires.
    if (result.kind === "response" && result.response.status === 401) {
      this.tokenRefused(request.endpoint, got.token);
    }
    return result;
  }

  /** Not async: a call waits for its answer in the transport's promise alone. */
  #call(request: UpstreamRequest, bearer: string | undefined): Promise<UpstreamResult> {
    const { endpoint, body } = request;
    let url: string, headers: Record<string, string>, guard: AnswerGuard;
    try {
      url = upstreamUrl(endpoint, request.path);
      if (request.query) url += (url.includes("?") ? "&" : "?") + request.query;
      headers = upstreamHeaders(
        endpoint,
        request.clientHeaders,
        request.requestId,
        bearer,
        request.contentType,
      );
      guard = new AnswerGuard(this.#limits.maxResponseBytes, this.#maskFor(endpoint, headers));
    } catch (error) {
      return Promise.reject(error);
    }
    const { signal, release, failed, watch } = this.#track(request);
    let answered: Promise<Reply>;
    try {
      const init = { method: request.method, headers, signal, once: request.once };
      answered = body instanceof ReadableStream
        ? guardedFetch(url, { ...init, body }, guard)
        : typeof body === "object"
        ? this.#streamed(url, { ...init, body, guard })
        : this.#send(url, { ...init, body, guard });
    } catch (error) {
      return Promise.resolve().then(() => failed(error));
    }
    return answered.then((response): UpstreamResult => {
      watch?.answered(response.status);
      return { kind: "response", response, release };
    }, failed);
  }

  /**
   * The call's signal, aborted by its timeout or by the client's leaving; `release` (once) clears both and ends the
   * attempt's watch; `failed` turns what the transport threw into the call's result (a guard's refusal is thrown on).
   */
  #track(request: UpstreamRequest) {
    const { signal: clientSignal } = request;
    const signal = new CallSignal();
    const deadline = deadlines.after(request.endpoint.timeoutMs, () => {
      signal.abort(new DOMException("The upstream request timed out", "TimeoutError"));
    });
    const onClientAbort = () => signal.abort(clientSignal.reason);
    if (clientSignal.aborted) onClientAbort();
    // No `{ once: true }`: `release` removes the listener, and the options object costs a conversion per call.
    else clientSignal.addEventListener("abort", onClientAbort);
    const watch = this.observer?.start(request);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      deadline.cancel();
      clientSignal.removeEventListener("abort", onClientAbort);
      watch?.ended();
    };
    const failed = (error: unknown): UpstreamResult => {
      // A body that failed for what the client sent (a malformed chunk: 400) is that answer, as a guard's refusal.
      const { cause } = error instanceof RequestBodyFailed ? error : {};
      if (cause instanceof ProxyError && cause.status !== 499) error = cause;
      // An answer refused by the guard (declared too large) is the client's 502, not a reason to fail over.
      if (error instanceof ProxyError && !clientSignal.aborted) {
        watch?.failed("connection");
        release();
        throw error;
      }
      // Not aborted by the client: an abort of the call's own signal is its timeout. A streamed body that failed
      // is the client's leaving too, though its signal may not say so yet.
      const result: UpstreamResult = clientSignal.aborted || error instanceof RequestBodyFailed
        ? { kind: "aborted" }
        : signal.aborted
        ? { kind: "timeout" }
        : { kind: "connection", message: connectionMessage(error), unsent: neverConnected(error) };
      watch?.failed(result.kind);
      release();
      return result;
    };
    return { signal, release, failed, watch };
  }
}

/**
 * The mask of what this request sends as credentials: the endpoint's key and the `authorization` (its token) and
 * `api-key` values, which the endpoint's headers may have set. Kept per endpoint while they stay the same.
 */
function secretsOf(endpoint: EndpointConfig, headers: Record<string, string>): string[] {
  const auth = headers["authorization"];
  return [endpoint.apiKey, auth?.replace(/^\S+\s+/, ""), headers["api-key"]].filter((v): v is string => !!v);
}
