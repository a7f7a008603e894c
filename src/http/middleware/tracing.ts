/**
 * Installed only when tracing is on: a span per generation request, active while the request is handled (the
 * upstream client's attempt spans become its children), ended with what the request's trace and answer say. A
 * JSON answer's facts come from the pipeline's parse of it (noted in the trace by the edge); a stream's are
 * watched as it passes, and its span ends when the stream ends (or the client leaves).
 */

import { RELAY_LOST_CODE } from "../../cache/relay.ts";
import { STREAM_CUT_CODE } from "../../proxy/stream.ts";
import type { Middleware } from "../request_context.ts";
import { routeLabel } from "../../metrics/labels.ts";
import { type AnswerFacts, readAnswer, StreamFacts } from "../../telemetry/genai.ts";
import type { Telemetry } from "../../telemetry/telemetry.ts";
import type { AppEnv } from "../routes/generation.ts";

const TRACED = new Set(["chat", "responses", "embeddings"]);

export function tracing(telemetry: Telemetry): Middleware<AppEnv> {
  return async (c, next) => {
    const path = c.req.path;
    if (c.req.method !== "POST" || !TRACED.has(routeLabel(path))) return await next();
    const span = telemetry.startRequest();
    await span.run(next);
    const response = c.res;
    const trace = c.get("trace");
    const served = c.error ? undefined : trace?.served;
    const status = response.status;
    // `body` last: reading it from a whole answer would turn the bytes Deno serves as they are into a stream.
    const stream = status === 200 &&
      (response.headers.get("content-type") ?? "").startsWith("text/event-stream") && response.body !== null;
    const outcome = {
      path: path.replace(/^\/v1\//, "").replace(/^\//, ""),
      group: c.get("group") ?? "",
      status,
      stream,
      endpoint: served?.endpoint,
      attempts: served?.attempts,
      cache: served?.cache,
      keyName: trace?.keyName,
      // 499: the client left before its answer, named as a stream's client leaving is.
      errorType: status === 499 ? "client_closed" : status >= 400 ? String(status) : undefined,
    };
    if (!stream) {
      span.end({ ...outcome, facts: readAnswer(trace?.answer) });
      return;
    }
    // The caller's key name is noted by the record stage, which for a stream runs at its end: read it then.
    const end = (facts: AnswerFacts, errorType?: string) =>
      span.end({ ...outcome, keyName: trace?.keyName, facts, errorType });
    c.res = new Response(watched(response.body!, end), response);
  };
}

/** The stream as it was, its facts noted on the way; the span ends with it. */
function watched(
  body: ReadableStream<Uint8Array>,
  finish: (facts: AnswerFacts, errorType?: string) => void,
): ReadableStream<Uint8Array> {
  const watcher = new StreamFacts();
  const reader = body.getReader();
  const end = (errorType?: string) => finish(watcher.facts, errorType);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        end("stream_cut");
        controller.error(error);
        return;
      }
      if (chunk.done) {
        // A stream the upstream cut (or a shared one that was lost) ends cleanly, with the proxy's error event:
        // the leader's and every follower's alike.
        const code = watcher.errorCode;
        end(code === STREAM_CUT_CODE || code === RELAY_LOST_CODE ? "stream_cut" : undefined);
        controller.close();
        return;
      }
      watcher.push(chunk.value);
      controller.enqueue(chunk.value);
    },
    cancel(reason) {
      end("client_closed");
      return reader.cancel(reason);
    },
  });
}
