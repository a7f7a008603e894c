/**
 * What the routes beyond generation hand to the pipeline: a relay request (the group, where it may go, whether its
 * body can be sent again) and its upstream call (method, path, body per endpoint, how the answer is read).
 */

import type { EndpointConfig, GroupConfig } from "../config/config.ts";
import type { Answer } from "../core/answer.ts";
import type { RelayRequest } from "../core/request.ts";
import type { RequestTrace } from "../metrics/metrics.ts";
import type { UpstreamCall } from "../proxy/call.ts";
import type { StreamedBody } from "../upstream/http1_chunked.ts";

/** What every upstream call of one client request shares. */
export interface CallContext {
  readonly clientHeaders: Headers;
  readonly requestId: string;
  readonly signal: AbortSignal;
  readonly trace?: RequestTrace;
}

export interface CallSpec {
  readonly method: "GET" | "POST" | "DELETE";
  /** Path below `/v1`. */
  readonly path: string;
  readonly query?: string;
  readonly body?: (endpoint: EndpointConfig) => string | ReadableStream<Uint8Array> | StreamedBody;
  readonly contentType?: string;
  /** The answer streams to the client unread (audio, file content); else it is read whole. */
  readonly passThrough?: boolean;
  /** A 2xx must be JSON, else the endpoint failed (answers the proxy reads). */
  readonly json?: boolean;
  /** Whether a status is the endpoint's failure: moves on, or for a holder, counts against its health. */
  readonly failure: (status: number) => boolean;
  /** Makes something upstream each time it is received: sent at most once per attempt (`UpstreamCall.once`). */
  readonly once?: boolean;
}

export function relayRequest(
  context: CallContext,
  group: GroupConfig,
  path: string,
  target: RelayRequest["target"],
  unresendable?: RelayRequest["unresendable"],
): RelayRequest {
  return { kind: "relay", path, group, target, unresendable, ...context };
}

export function upstreamCall(context: CallContext, group: GroupConfig, spec: CallSpec): UpstreamCall {
  return {
    ...spec,
    json: spec.json ?? false,
    wrapErrors: true,
    group: group.name,
    ...context,
  };
}

const decoder = new TextDecoder();

/** An answer's body as text (read whole if it streams). */
export async function answerText(answer: Answer): Promise<string> {
  const { body } = answer;
  if (body.kind === "json") return body.text;
  if (body.kind === "stream") return await new Response(body.stream).text();
  return typeof body.bytes === "string" ? body.bytes : decoder.decode(body.bytes);
}
