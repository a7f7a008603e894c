/**
 * The Responses API stages of the pipeline. `route` keeps a conversation on the endpoint that owns it (from
 * `previous_response_id` or encrypted reasoning items); `reroute` replays it to a healthy endpoint when the owner
 * cannot serve; `record` notes each finished turn (owner, input, output, encrypted reasoning blobs) as the answer
 * goes out, cached answers included.
 */

import type { Answer } from "../core/answer.ts";
import type { Admitted, GenerationRequest, ItemRequest } from "../core/request.ts";
import type { ResponseOwners } from "../keys/owners.ts";
import type { EndpointConfig, Settings } from "../config/config.ts";
import { echoed, ProxyError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { TurnEvents } from "./turn_events.ts";
import type { ResponseAffinity } from "./affinity.ts";
import { holdStream } from "../proxy/tap.ts";
import { encryptedBlobs, inputItems, type Item, replayInput, type Turn } from "./conversation.ts";

/** Where a Responses request goes, as the routing stage decided, and what its turn is recorded with. */
export interface Conversation {
  readonly previous: string | undefined;
  readonly input: Item[];
  /** Only this endpoint may serve it: it owns the conversation. */
  readonly pinned?: string;
  /** Endpoints that must not serve it (the owner that just failed). */
  readonly exclude?: readonly string[];
  /** The conversation was replayed on another endpoint than its owner. */
  readonly replayed: boolean;
  /**
   * The ids of the turns before `previous`, as the store held them (null: none held); absent when not read (a
   * group of one endpoint, where no replay can happen). The new turn keeps them, after `previous`.
   */
  readonly earlier?: readonly string[] | null;
}

/** Proxy errors that mean "the owner could not serve this", so the conversation may move. */
const OWNER_DOWN = new Set([429, 503, 504]);

/** A response another key owns is answered as OpenAI answers an id it does not know. */
const previousNotFound = (id: string) =>
  new ProxyError(
    400,
    "invalid_request_error",
    "previous_response_not_found",
    `Previous response with id '${echoed(id)}' not found.`,
    { param: "previous_response_id" },
  );

const conversationUnavailable = (message: string) =>
  new ProxyError(409, "invalid_request_error", "conversation_unavailable", message, {
    param: "previous_response_id",
  });

export class ResponsesLayer {
  readonly #affinity: ResponseAffinity;
  readonly #settings: Settings;
  readonly #logger: Logger;
  readonly #owners: ResponseOwners | undefined;

  /** `owners`: which key created each response (absent: responses are open to every caller). */
  constructor(affinity: ResponseAffinity, settings: Settings, logger: Logger, owners?: ResponseOwners) {
    this.#affinity = affinity;
    this.#settings = settings;
    this.#logger = logger;
    this.#owners = owners;
  }

  /** The routing stage: pins the request to the endpoint that owns its conversation, when it is in the group. */
  async route(request: Admitted<GenerationRequest>): Promise<Conversation> {
    const previous = typeof request.body.previous_response_id === "string"
      ? request.body.previous_response_id
      : undefined;
    const input = inputItems(request.body.input);
    // With one endpoint to choose from, a wrong guess is impossible: the owner is not waited for.
    const patient = request.group.endpoints.length > 1;
    // The earlier turns' ids are asked for in the same round trip as the owner (one write to Redis).
    const [owner, allowed, earlier] = await Promise.all([
      this.#owner(previous, encryptedBlobs(input), patient),
      previous && this.#owners ? this.#owners.allows(previous, request.identity) : true,
      previous && patient ? this.#affinity.ancestorsOf(previous) : undefined,
    ]);
    if (!allowed) throw previousNotFound(previous!);
    const inGroup = owner !== undefined && request.group.endpoints.some((endpoint) => endpoint.id === owner);
    return { previous, input, pinned: inGroup ? owner : undefined, replayed: false, earlier };
  }

  /**
   * After the owner failed with `error`: the request replayed (its conversation's turns as input) for the other
   * endpoints, or `error` thrown again when the conversation cannot or must not move.
   */
  async reroute(
    request: GenerationRequest,
    conversation: Conversation,
    error: unknown,
  ): Promise<{ request: GenerationRequest; conversation: Conversation }> {
    const owner = conversation.pinned;
    if (owner === undefined || !(error instanceof ProxyError) || !OWNER_DOWN.has(error.status)) throw error;
    const { previous, input } = conversation;
    const what = previous ? `response '${echoed(previous)}'` : "these reasoning items";
    if (this.#settings.responsesFailover === "fail") {
      throw conversationUnavailable(
        `The endpoint that owns ${what} (${owner}) cannot serve now (${error.message}); responses_failover is 'fail'`,
      );
    }
    const turns = previous ? await this.#affinity.turns(previous) : [];
    if (turns === null) {
      throw conversationUnavailable(
        `The endpoint that owns ${what} (${owner}) cannot serve now, and this proxy does not hold that conversation to replay it elsewhere`,
      );
    }
    const { previous_response_id: _previous, ...body } = request.body;
    body.input = replayInput(turns, input);
    this.#logger.info("replaying conversation on another endpoint", {
      request_id: request.requestId,
      owner,
      previous_response_id: previous,
      turns: turns.length,
    });
    return {
      request: { ...request, body },
      conversation: { previous, input, exclude: [owner], replayed: true, earlier: conversation.earlier },
    };
  }

  /** Records the turn once the answer is complete: at once for JSON (before the reply), at `response.completed` for streams. */
  async record(
    request: Admitted<GenerationRequest>,
    conversation: Conversation,
    answer: Answer,
  ): Promise<Answer> {
    if (conversation.replayed) answer = { ...answer, meta: { ...answer.meta, conversation: "replayed" } };
    if (answer.status !== 200) return answer;
    const endpoint = answer.meta.endpoint;
    const record = async (value: Record<string, unknown>) => {
      if (typeof value.id !== "string") return;
      const output = Array.isArray(value.output) ? (value.output as Item[]) : [];
      const turn: Turn = { endpoint, previous: conversation.previous, input: conversation.input, output };
      try {
        await Promise.all([
          this.#affinity.record(value.id, turn, encryptedBlobs(output), earlierTurns(conversation)),
          this.#owners?.claim(value.id, request.identity),
        ]);
      } catch (error) {
        this.#logger.warn("could not record Responses affinity", { request_id: request.requestId, error });
      }
    };
    const body = answer.body;
    if (body.kind === "stream") {
      return {
        ...answer,
        body: {
          kind: "stream",
          stream: this.#observeStream(body.stream, endpoint, record, request.identity),
        },
      };
    }
    const parsed = body.kind === "json" ? body.parsed : parseJson(body.bytes);
    if (parsed && typeof parsed === "object") await record(parsed as Record<string, unknown>);
    return answer;
  }

  /** The routing stage of `/responses/{id}` calls: the endpoint that owns the response, or a 404. */
  async owner(
    request: Admitted<ItemRequest>,
    endpoints: ReadonlyMap<string, EndpointConfig>,
  ): Promise<EndpointConfig> {
    const id = request.responseId;
    const [owner, allowed] = await Promise.all([
      this.#affinity.ownerOf(id),
      this.#owners ? this.#owners.allows(id, request.identity) : true,
    ]);
    const endpoint = owner && allowed ? endpoints.get(owner) : undefined;
    if (endpoint) return endpoint;
    throw new ProxyError(
      404,
      "invalid_request_error",
      "response_not_found",
      `No response with id '${
        echoed(id)
      }' went through this proxy in the last ${this.#settings.responseAffinityTtlSeconds}s`,
      { param: "response_id" },
    );
  }

  /** The record stage of `/responses/{id}` calls: a response deleted upstream is forgotten here too. */
  async recordItem(request: ItemRequest, answer: Answer): Promise<void> {
    if (request.method === "DELETE" && request.suffix === "" && answer.status >= 200 && answer.status < 300) {
      await Promise.all([
        this.#affinity.forget(request.responseId),
        this.#owners?.forget(request.responseId),
      ]);
    }
  }

  /** The endpoint that must serve this request, from `previous_response_id` or encrypted reasoning items. */
  async #owner(previous: string | undefined, blobs: string[], patient: boolean): Promise<string | undefined> {
    const [byId, byBlobs] = await Promise.all([
      previous ? this.#affinity.ownerOf(previous, patient) : null,
      blobs.length > 0 ? this.#affinity.ownersOfBlobs(blobs, patient) : [],
    ]);
    const owners = new Set(byBlobs);
    if (byId) owners.add(byId);
    if (owners.size > 1) {
      throw new ProxyError(
        409,
        "invalid_request_error",
        "conflicting_conversation_items",
        `This request carries items produced by different endpoints (${
          [...owners].join(", ")
        }); encrypted reasoning items can only be read by the endpoint that produced them`,
        { param: "input" },
      );
    }
    return owners.values().next().value;
  }

  #observeStream(
    stream: ReadableStream<Uint8Array>,
    endpoint: string,
    record: (answer: Record<string, unknown>) => Promise<void>,
    caller: Admitted["identity"],
  ): ReadableStream<Uint8Array> {
    const turn = new TurnEvents();
    const affinity = this.#affinity;
    const owners = this.#owners;
    // A chunk carrying either event reaches the client once its writes are done, one after the other.
    return holdStream(stream, (chunk) => {
      let writes: Promise<unknown> | undefined;
      for (const { type, data } of turn.push(chunk)) {
        let response: Record<string, unknown> | undefined;
        try {
          response = (JSON.parse(data) as { response?: Record<string, unknown> }).response;
        } catch { /* malformed event: passed through untouched */ }
        if (!response) continue;
        const id = response.id;
        // Known from the first event, so a cut stream's id still routes to its endpoint.
        const write: (() => Promise<unknown>) | undefined = type === "response.completed"
          ? () => record(response)
          : typeof id === "string"
          ? () => Promise.all([affinity.remember(id, endpoint), owners?.claim(id, caller)])
          : undefined;
        if (write) writes = (writes ?? Promise.resolve<unknown>(undefined)).then(write).catch(() => {});
      }
      return writes;
    });
  }
}

/** The ids of the turns before a new one: its `previous`, then those before it; undefined when not read. */
function earlierTurns({ previous, earlier }: Conversation): string[] | undefined {
  if (previous === undefined || earlier === undefined) return undefined;
  return [previous, ...earlier ?? []];
}

/** A whole body parsed, or undefined when it is not JSON (a cached answer is stored as its text). */
function parseJson(bytes: Uint8Array | string): unknown {
  try {
    return JSON.parse(typeof bytes === "string" ? bytes : new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
}
