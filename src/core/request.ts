/**
 * What the HTTP edge hands to the pipeline, and what admission adds to it. Shared by the stages (cache, Responses,
 * plan, attempts, record), so it lives below all of them. Stages never write notes onto a request for a later one
 * to read back: each returns what it decided.
 */

import type { HeaderReader } from "./header_reader.ts";
import type { EndpointConfig, GroupConfig } from "../config/config.ts";
import type { Answer } from "./answer.ts";
import type { RequestTrace } from "../metrics/metrics.ts";
import type { Route } from "./route.ts";
import type { AbortLike } from "./abort_like.ts";
import type { AttemptOutcome } from "../balancer/balancer.ts";

/** A generation request (chat completions, responses, embeddings), its body read and checked. */
export interface GenerationRequest {
  readonly kind: "generation";
  readonly route: Route;
  readonly group: GroupConfig;
  /** The client's parsed body (with the proxy-only `cache` field, which the attempts never forward). */
  readonly body: Record<string, unknown>;
  readonly stream: boolean;
  readonly clientHeaders: HeaderReader;
  readonly requestId: string;
  /** Aborted when the client leaves. */
  readonly signal: AbortLike;
  /** The request's timings (set by the observing middleware): attempts add upstream time and waits to it. */
  readonly trace?: RequestTrace;
}

/** `GET|DELETE /responses/{id}`, `GET /responses/{id}/input_items`, `POST /responses/{id}/cancel`. */
export interface ItemRequest {
  readonly kind: "item";
  readonly method: "GET" | "DELETE" | "POST";
  readonly responseId: string;
  /** What follows the id in the path: "" or `/input_items` or `/cancel`. */
  readonly suffix: "" | "/input_items" | "/cancel";
  /** The client's query string, without `?` (paging of `input_items`). */
  readonly query: string;
  readonly clientHeaders: HeaderReader;
  readonly requestId: string;
  readonly signal: AbortSignal;
  readonly trace?: RequestTrace;
}

/**
 * A call of the routes beyond generation (files, batches, audio, images, moderations): never cached, one upstream
 * call per attempt, over the group's endpoints or to the one endpoint that holds a file or batch.
 */
export interface RelayRequest {
  readonly kind: "relay";
  /** The path below `/v1` it is for, e.g. `audio/speech` or `files/{id}/content`. */
  readonly path: string;
  readonly group: GroupConfig;
  /** Where it may go: the group's endpoints (some left out), or the one that holds an object. */
  readonly target:
    | { readonly kind: "group"; readonly exclude?: readonly string[] }
    | {
      readonly kind: "holder";
      readonly endpoint: EndpointConfig;
      readonly id: string;
      readonly what: string;
    };
  /**
   * Why the request cannot go to another endpoint after an attempt that got `outcome` (its body was streamed away,
   * or an upload may have been received); undefined while it can.
   */
  readonly unresendable?: (outcome: AttemptOutcome) => string | undefined;
  /** Sent to a holder but makes something upstream (creating a batch): charged to the caller's key limits. */
  readonly creates?: boolean;
  /** The record stage of the route (usage of audio, images, moderations): the answer from `endpoint`, watched. */
  readonly record?: (answer: Answer, endpoint: string, identity: Identity | null) => Answer;
  readonly clientHeaders: HeaderReader;
  readonly requestId: string;
  readonly signal: AbortSignal;
  readonly trace?: RequestTrace;
}

export type IncomingRequest = GenerationRequest | ItemRequest | RelayRequest;

/** Who is calling, as an admission rule established it (e.g. which client key). Never the key itself. */
export interface Identity {
  /** A stable id safe to log and to use as a label (a key's name or digest prefix). */
  readonly id: string;
  /**
   * What the Responses objects it creates are recorded under, when not `id`: a key's name, as its files are (a key
   * named `anonymous` is counted apart from keyless callers, `KeyPolicy.id`, yet owns what it made before).
   */
  readonly owner?: string;
  /** Set when the caller's cache entries are its own (a `private` key): part of the cache key. */
  readonly cacheScope?: string;
  /**
   * Checks admission started and did not wait for (per-key limits), so that their store call goes out with the
   * request's first store lookup. The pipeline serves nothing before they pass; their rejection is the answer.
   * They resolve to headers every answer to this caller carries (the key's `x-ratelimit-*`).
   */
  readonly pending?: Promise<Readonly<Record<string, string>>>;
  /** Called once, when the request's answer has ended (a stream: its last byte) or the request failed. */
  readonly finish?: () => void;
  /** Called when the request failed with no answer: the tokens admission charged for it were not used. */
  readonly unused?: () => void;
}

/** A request that passed admission, and who sent it (null when no rule identified the caller). */
export type Admitted<R extends IncomingRequest = IncomingRequest> = R & {
  readonly identity: Identity | null;
};
