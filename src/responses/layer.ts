/**
 * The Responses API layer in front of the pipeline: keeps a conversation on the endpoint that owns it, replays it
 * to a healthy endpoint when the owner is down, and records each finished turn (owner, input, output, encrypted
 * reasoning blobs) as answers pass through.
 */

import type { Settings } from "../config/config.ts";
import { ProxyError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { toJsonAnswer } from "../proxy/answer.ts";
import type { ProxyRequest } from "../proxy/pipeline.ts";
import { type SseEvent, SseParser } from "../sse/parse.ts";
import type { ResponseAffinity } from "./affinity.ts";
import { encryptedBlobs, inputItems, type Item, replayInput, type Turn } from "./conversation.ts";

export type Next = (request: ProxyRequest) => Promise<Response>;

/** Proxy errors that mean "the owner could not serve this", so the conversation may move. */
const OWNER_DOWN = new Set([429, 503, 504]);

const conversationUnavailable = (message: string) =>
  new ProxyError(409, "invalid_request_error", "conversation_unavailable", message, {
    param: "previous_response_id",
  });

export class ResponsesLayer {
  readonly #affinity: ResponseAffinity;
  readonly #settings: Settings;
  readonly #logger: Logger;

  constructor(affinity: ResponseAffinity, settings: Settings, logger: Logger) {
    this.#affinity = affinity;
    this.#settings = settings;
    this.#logger = logger;
  }

  async handle(request: ProxyRequest, next: Next): Promise<Response> {
    const previous = typeof request.body.previous_response_id === "string"
      ? request.body.previous_response_id
      : undefined;
    const input = inputItems(request.body.input);
    const owner = await this.#owner(previous, encryptedBlobs(input));
    const inGroup = owner !== undefined && request.group.endpoints.some((endpoint) => endpoint.id === owner);
    if (!inGroup) return await this.#observe(request, previous, input, await next(request));

    let response: Response;
    try {
      response = await next({ ...request, pinned: owner });
    } catch (error) {
      if (!(error instanceof ProxyError) || !OWNER_DOWN.has(error.status)) throw error;
      return await this.#replay(request, previous, input, owner!, error, next);
    }
    return await this.#observe(request, previous, input, response);
  }

  /** The endpoint that must serve this request, from `previous_response_id` or encrypted reasoning items. */
  async #owner(previous: string | undefined, blobs: string[]): Promise<string | undefined> {
    const [byId, byBlobs] = await Promise.all([
      previous ? this.#affinity.ownerOf(previous) : null,
      blobs.length > 0 ? this.#affinity.ownersOfBlobs(blobs) : [],
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

  async #replay(
    request: ProxyRequest,
    previous: string | undefined,
    input: Item[],
    owner: string,
    cause: ProxyError,
    next: Next,
  ): Promise<Response> {
    const what = previous ? `response '${previous}'` : "these reasoning items";
    if (this.#settings.responsesFailover === "fail") {
      throw conversationUnavailable(
        `The endpoint that owns ${what} (${owner}) cannot serve now (${cause.message}); responses_failover is 'fail'`,
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
    const response = await next({ ...request, body, pinned: undefined, exclude: [owner] });
    response.headers.set("x-llmproxy-conversation", "replayed");
    return await this.#observe(request, previous, input, response);
  }

  /** Records the turn once the answer is complete: at once for JSON, at `response.completed` for streams. */
  async #observe(
    request: ProxyRequest,
    previous: string | undefined,
    input: Item[],
    response: Response,
  ): Promise<Response> {
    if (response.status !== 200 || !response.body) return response;
    const record = async (answer: Record<string, unknown>, endpoint: string) => {
      if (typeof answer.id !== "string") return;
      const output = Array.isArray(answer.output) ? (answer.output as Item[]) : [];
      const turn: Turn = { endpoint, previous, input, output };
      try {
        await this.#affinity.record(answer.id, turn, encryptedBlobs(output));
      } catch (error) {
        this.#logger.warn("could not record Responses affinity", { request_id: request.requestId, error });
      }
    };
    // From the trace when there is one: reading the Response's headers would cost Deno a rebuild of them.
    const endpoint = request.trace?.served?.endpoint ?? response.headers.get("x-llmproxy-endpoint");
    if (!endpoint) return response;
    if (request.stream) return this.#observeStream(response, endpoint, (answer) => record(answer, endpoint));
    // The pipeline hands over the answer already parsed. The turn is recorded before the reply so the client's
    // next turn finds it.
    const answer = await toJsonAnswer(response);
    const parsed = answer.parsed;
    if (parsed && typeof parsed === "object") await record(parsed as Record<string, unknown>, endpoint);
    return answer;
  }

  #observeStream(
    response: Response,
    endpoint: string,
    record: (answer: Record<string, unknown>) => Promise<void>,
  ): Response {
    const parser = new SseParser();
    const affinity = this.#affinity;
    const observer = new TransformStream<Uint8Array, Uint8Array>({
      async transform(chunk, controller) {
        for (const event of parser.push(chunk)) {
          const type = eventType(event);
          if (type !== "response.created" && type !== "response.completed") continue;
          try {
            const data = JSON.parse(event.data) as { response?: Record<string, unknown> };
            if (!data.response) continue;
            // Known from the first event, so a cut stream's id still routes to its endpoint.
            if (type === "response.created" && typeof data.response.id === "string") {
              await affinity.remember(data.response.id, endpoint).catch(() => {});
            } else if (type === "response.completed") await record(data.response);
          } catch { /* malformed event: passed through untouched */ }
        }
        controller.enqueue(chunk);
      },
    });
    return new Response(response.body!.pipeThrough(observer), {
      status: response.status,
      headers: response.headers,
    });
  }
}

/** The event's type from its `event:` line, or for streams that send none, from the `type` in its data. */
function eventType(event: SseEvent): string | null {
  if (event.event !== null) return event.event;
  if (event.data.includes('"response.created"')) return "response.created";
  if (event.data.includes('"response.completed"')) return "response.completed";
  return null;
}
