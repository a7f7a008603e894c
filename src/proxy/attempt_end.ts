/**
 * How an attempt ends (attempts.ts): a 2xx answer read as its call asks (a stream, committed once its first event
 * arrived, one that dies before that failing over; a body passed through unread; a whole body, JSON checked for
 * generation requests), each the endpoint's success for stats and health; or the endpoint's failure noted and on
 * to the next pick. Promise callbacks where a step waits, not async frames (issue 22.4c).
 */

import type { AttemptOutcome, Pick } from "../balancer/balancer.ts";
import type { EndpointConfig } from "../config/config.ts";
import type { Answer } from "../core/answer.ts";
import type { Route } from "../core/route.ts";
import { ClientGone, ProxyError } from "../errors.ts";
import type { AttemptDeps } from "./attempts.ts";
import { type Got, type Outcome, spent } from "./call.ts";
import { type FirstChunk, openStream, type StreamHooks } from "./stream.ts";
import { tapStream } from "./tap.ts";

const decoder = new TextDecoder();

export class AttemptEnd {
  readonly #deps: AttemptDeps;

  constructor(deps: AttemptDeps) {
    this.#deps = deps;
  }

  /** A failed attempt: the endpoint's failure noted (stats, health), and the next pick. */
  async failed(endpoint: EndpointConfig, cause: string, outcome: AttemptOutcome): Promise<Outcome> {
    this.#deps.stats.failure(endpoint.id);
    await this.#deps.health.failure(endpoint, cause);
    return { kind: "retry", outcome };
  }

  /** A 2xx stream: committed once its first event arrived (a stream that dies before that fails over). */
  stream(got: Got, route: Route): Outcome | Promise<Outcome> {
    const opened = openStream(
      got.response,
      route,
      this.#streamHooks(got.call.requestId, got.pick, got.release),
    );
    return opened instanceof Promise
      ? opened.then((first) => this.#opened(got, first))
      : this.#opened(got, opened);
  }

  /**
   * What ends a stream's attempt. Made apart from `stream`: the hook lives as long as the stream, so it holds the
   * request id, the pick and `release`, not the call (its body, the client's headers) nor the upstream's answer.
   */
  #streamHooks(requestId: string, pick: Pick, release: () => void): StreamHooks {
    const { endpoint } = pick;
    const { health, stats, logger } = this.#deps;
    return {
      onEnd: (end, error) => {
        release();
        pick.lease.end();
        if (end !== "failed") return;
        logger.warn("upstream stream failed mid-way", {
          request_id: requestId,
          endpoint: endpoint.id,
          error: error instanceof Error ? error.name : undefined,
        });
        stats.failure(endpoint.id);
        health.failure(endpoint, "stream cut").catch(() => {});
      },
    };
  }

  /** A stream's first events (its answer), or why none came (the next pick). */
  #opened(got: Got, opened: FirstChunk): Outcome | Promise<Outcome> {
    const { call, pick, response } = got;
    const { endpoint } = pick;
    if (!opened.ok) {
      got.release();
      if (call.signal.aborted) throw new ClientGone();
      const outcome: AttemptOutcome = opened.timeout
        ? { kind: "timeout" }
        : { kind: "connection", message: opened.message };
      return this.failed(endpoint, opened.message, outcome);
    }
    const firstAt = spent(call.trace, got.answeredAt);
    pick.lease.firstByte(firstAt - got.sentAt);
    this.#deps.metrics?.firstToken(endpoint, (firstAt - (call.trace?.startedAt ?? got.sentAt)) / 1000);
    this.#deps.stats.success(endpoint.id, firstAt - got.sentAt);
    const answer: Answer = {
      status: response.status,
      headers: got.headers,
      body: { kind: "stream", stream: opened.body },
      meta: got.meta,
    };
    const outcome: Outcome = { kind: "answer", answer };
    const wrote = this.#deps.health.success(endpoint, pick.health);
    return wrote ? wrote.then(() => outcome) : outcome;
  }

  /** A 2xx whose body streams to the client unread; the attempt (timer, lease) ends with the body. */
  async passThrough(got: Got): Promise<Outcome> {
    const { pick, response, release } = got;
    pick.lease.firstByte(got.answeredAt - got.sentAt);
    this.#deps.stats.success(pick.endpoint.id, got.answeredAt - got.sentAt);
    await this.#deps.health.success(pick.endpoint, pick.health);
    const ended = () => {
      release();
      pick.lease.end();
    };
    const body: Answer["body"] = response.body
      ? { kind: "stream", stream: tapStream(response.body, () => {}, ended) }
      : { kind: "bytes", bytes: "" };
    if (!response.body) ended();
    return {
      kind: "answer",
      answer: { status: response.status, headers: got.headers, body, meta: got.meta },
    };
  }

  /** A 2xx read whole: at once when its bytes came with its head (no promise), else once they have arrived. */
  whole(got: Got): Outcome | Promise<Outcome> {
    got.pick.lease.firstByte(got.answeredAt - got.sentAt);
    const whole = got.response.whole;
    return whole ? this.#read(got, whole, got.answeredAt) : this.#readLater(got); // read as it was answered
  }

  async #readLater(got: Got): Promise<Outcome> {
    const { call, pick, response, release } = got;
    const { endpoint } = pick;
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await response.bytes();
    } catch (error) {
      release();
      if (call.signal.aborted) throw new ClientGone();
      // Over `max_response_bytes`: the endpoint's failure, and a 502 to the client (not another attempt).
      if (error instanceof ProxyError) {
        await this.failed(endpoint, error.code, { kind: "connection", message: error.message });
        throw error;
      }
      const timeout = error instanceof Error && error.name === "TimeoutError";
      const outcome: AttemptOutcome = timeout
        ? { kind: "timeout" }
        : { kind: "connection", message: "answer cut before its end" };
      return await this.failed(endpoint, timeout ? "timeout" : "body cut", outcome);
    }
    return await this.#read(got, bytes, spent(call.trace, got.answeredAt));
  }

  /** The whole body read; for a generation request it must be JSON (the parse travels on with the answer). */
  #read(got: Got, bytes: Uint8Array<ArrayBuffer>, readAt: number): Outcome | Promise<Outcome> {
    const { call, pick, response } = got;
    const { endpoint } = pick;
    got.release();
    let body: Answer["body"] = { kind: "bytes", bytes };
    if (call.json) {
      // A 200 that is not JSON is the endpoint's failure, not an answer.
      const text = decoder.decode(bytes);
      try {
        body = { kind: "json", bytes, text, parsed: JSON.parse(text) };
      } catch {
        return this.failed(endpoint, "malformed answer", { kind: "malformed" });
      }
    }
    this.#deps.stats.success(endpoint.id, readAt - got.sentAt);
    const outcome: Outcome = {
      kind: "answer",
      answer: { status: response.status, headers: got.headers, body, meta: got.meta },
    };
    const wrote = this.#deps.health.success(endpoint, pick.health);
    return wrote ? wrote.then(() => outcome) : outcome;
  }
}
