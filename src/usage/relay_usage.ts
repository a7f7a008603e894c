/**
 * Usage of the routes beyond generation that spend upstream money: audio, images and moderations (the record stage
 * of their relay request) and realtime sessions (each `response.done`). Counted like chat: in the usage ledger
 * under the key's name (so in `/metrics`, `/stats`, `/admin/usage` and the usage stream) and charged to the key's
 * `tpm` and budgets. What the upstream reports is what is counted: gpt-image answers, GPT-4o transcriptions (JSON
 * or their `transcript.text.done` event) and realtime responses report tokens; speech, moderations, `whisper-1`
 * (seconds) and dall-e report none, and count as requests without tokens.
 */

import type { GroupConfig } from "../config/config.ts";
import type { Answer } from "../core/answer.ts";
import type { Identity } from "../core/request.ts";
import { KeyIdentity } from "../keys/admission.ts";
import { tapStream } from "../proxy/tap.ts";
import { StreamUsage } from "../ratelimit/stream_usage.ts";
import { type UsageFigures, usageOf } from "./figures.ts";
import type { UsageLedger } from "./ledger.ts";
import { ANONYMOUS } from "../keys/schema.ts";
import { countsUsage } from "./sink.ts";
import { joinBytes } from "../util/bytes.ts";

export interface RelayUsageDeps {
  readonly usage: UsageLedger;
  readonly keys: { readonly clientKeysRequired: boolean; readonly hasAdminKeys: boolean };
}

/** What a request of `route` in `group` is counted as. */
export interface RelayEvent {
  readonly group: GroupConfig;
  /** The route below `/v1`, e.g. `images/generations`, or `realtime`. */
  readonly route: string;
  readonly requestId: string;
}

/** The record stage of a relay request: counts the answer from `endpoint`, watching a stream on its way. */
export type RelayRecord = (answer: Answer, endpoint: string, identity: Identity | null) => Answer;

/** Longest JSON answer read for its usage as it streams by (a transcription); a longer one counts as a request. */
const MAX_WATCHED_JSON = 1024 * 1024;

/** The record stage for one relay request; undefined when nothing is counted. */
export function relayUsage(deps: RelayUsageDeps, event: RelayEvent): RelayRecord | undefined {
  if (!countsUsage(deps)) return undefined;
  return (answer, endpoint, identity) =>
    watched(answer, reporter(deps.usage, event, endpoint, answer.status, identity));
}

/** Counts one answer (or realtime response) with the figures it reported, and charges them to the caller's key. */
export function reporter(
  ledger: UsageLedger,
  event: RelayEvent,
  endpoint: string,
  status: number,
  identity: Identity | null | undefined,
): (figures: UsageFigures | undefined) => void {
  const endpointModel = event.group.endpoints.find((candidate) => candidate.id === endpoint)?.model;
  return (figures) => {
    const spent = ledger.record({
      key: identity?.id ?? ANONYMOUS,
      group: event.group.name,
      endpoint,
      endpointModel,
      route: event.route,
      status,
      cacheHit: false,
      figures,
      requestId: event.requestId,
    });
    if (identity instanceof KeyIdentity) identity.settle(spent);
  };
}

/**
 * Counts each `response.done` of a realtime session as one request, with the usage it reports. Told every text
 * frame the upstream sends; frames that are not a `response.done` cost one substring search.
 */
export function realtimeUsage(
  ledger: UsageLedger,
  event: RelayEvent,
  endpoint: string,
  identity: Identity | undefined,
): (frame: string) => void {
  const report = reporter(ledger, event, endpoint, 200, identity);
  return (frame) => {
    if (!frame.includes('"response.done"')) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(frame);
    } catch {
      return;
    }
    if ((parsed as { type?: unknown })?.type === "response.done") report(usageOf(parsed));
  };
}

const decoder = new TextDecoder();

/**
 * Reports the answer's usage: at once for a whole body, at its end for a stream (when it was cut or its client left,
 * what its events had reported by then).
 */
function watched(answer: Answer, report: (figures: UsageFigures | undefined) => void): Answer {
  const { body } = answer;
  if (body.kind === "json") {
    report(usageOf(body.parsed));
    return answer;
  }
  if (body.kind === "bytes") {
    report(usageOf(parsed(typeof body.bytes === "string" ? body.bytes : decoder.decode(body.bytes))));
    return answer;
  }
  const type = answer.headers["content-type"] ?? "";
  let push: (chunk: Uint8Array) => void = () => {};
  let figures: () => UsageFigures | undefined = () => undefined;
  /** What a stream cut or left by its client had reported by then (a client may stop at the usage event). */
  let reported: () => UsageFigures | undefined = () => undefined;
  if (type.includes("text/event-stream")) {
    const events = new StreamUsage();
    push = (chunk) => events.push(chunk);
    reported = () => events.usage && usageOf({ usage: events.usage });
    figures = () => {
      events.end();
      return reported();
    };
  } else if (type.includes("json")) {
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    push = (chunk) => {
      bytes += chunk.length;
      if (bytes <= MAX_WATCHED_JSON) chunks.push(chunk.slice());
    };
    figures = () =>
      bytes <= MAX_WATCHED_JSON
        ? usageOf(parsed(new TextDecoder().decode(joinBytes(chunks, bytes))))
        : undefined;
  }
  const stream = tapStream(body.stream, push, (complete) => report(complete ? figures() : reported()));
  return { ...answer, body: { kind: "stream", stream } };
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
