/**
 * Responses API answers of the simulated upstream, and the book of responses it produced: a response can be
 * retrieved, deleted, its input listed, and continued with `previous_response_id` only on the sim that made it.
 * Encrypted reasoning blobs are likewise readable only by the sim that issued them.
 */

import {
  echoText,
  errorBody,
  isObject,
  type Json,
  Rejection,
  sampleFromSchema,
  type SimContext,
  splitPieces,
  tokens,
  toolResultText,
} from "./content.ts";
import { firstFunction, lastUserText, normalizeInput } from "./response_input.ts";

interface Entry {
  response: Json;
  readonly input: Json[];
  /** A background response's state until it is fetched (then it has finished) or cancelled. */
  queued?: Json;
}

const ENCRYPTED = "reasoning.encrypted_content";

export class ResponseBook {
  readonly #entries = new Map<string, Entry>();
  readonly #blobs = new Set<string>();
  readonly #limit: number;

  /** `limit` bounds the remembered responses and blobs; the oldest are forgotten first. */
  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  /** Builds a completed response; a streamed one has its text long enough to fill `ctx.chunks` deltas. */
  create(body: Json, ctx: SimContext, stream: boolean): Json {
    if (typeof body.model !== "string" || body.model === "") {
      throw new Rejection(
        400,
        errorBody(
          "Missing required parameter: 'model'.",
          "invalid_request_error",
          "missing_required_parameter",
          "model",
        ),
      );
    }
    const previous = body.previous_response_id;
    const continued = typeof previous === "string" ? this.#entries.get(previous) : undefined;
    if (typeof previous === "string" && !continued) {
      throw new Rejection(
        400,
        errorBody(
          `Previous response with id '${previous}' not found.`,
          "invalid_request_error",
          "previous_response_not_found",
          "previous_response_id",
        ),
      );
    }
    if (continued) {
      // Continuing a response keeps it as long as a new one: the bound forgets what is no longer used.
      this.#entries.delete(previous as string);
      this.#entries.set(previous as string, continued);
    }
    const input = normalizeInput(body.input, ctx);
    for (const item of input) {
      if (item.type === "reasoning" && typeof item.encrypted_content === "string") {
        if (!this.#blobs.has(item.encrypted_content)) {
          throw new Rejection(
            400,
            errorBody(
              `The encrypted content for item ${item.id ?? "(no id)"} could not be verified.`,
              "invalid_request_error",
              "invalid_encrypted_content",
            ),
          );
        }
      }
    }

    const output: Json[] = [];
    const include = Array.isArray(body.include) ? body.include : [];
    if (include.includes(ENCRYPTED)) {
      const blob = `enc_${ctx.name}_${crypto.randomUUID().replaceAll("-", "")}`;
      remember(this.#blobs, blob, this.#limit);
      output.push({ id: ctx.id("rs"), type: "reasoning", summary: [], encrypted_content: blob });
    }
    const pad = (text: string, fill: string) => stream ? splitPieces(text, ctx.chunks, fill).join("") : text;
    const last = input.at(-1);
    const tool = body.tool_choice === "none" || last?.type === "function_call_output"
      ? undefined
      : firstFunction(body.tools);
    const userText = lastUserText(input);
    const textConfig = isObject(body.text) ? body.text : {};
    const format = isObject(textConfig.format) ? textConfig.format : { type: "text" };
    let said: string;
    if (tool) {
      const args = JSON.stringify(sampleFromSchema(tool.parameters ?? { type: "object" }, userText));
      said = args;
      output.push({
        id: ctx.id("fc"),
        type: "function_call",
        status: "completed",
        arguments: pad(args, " "),
        call_id: ctx.id("call"),
        name: tool.name,
      });
    } else {
      let text: string;
      if (last?.type === "function_call_output") {
        text = pad(toolResultText(ctx.name, String(last.output)), ".");
      } else if (format.type === "json_schema") {
        text = pad(JSON.stringify(sampleFromSchema(format.schema, userText)), " ");
      } else if (format.type === "json_object") {
        text = pad(JSON.stringify({ sim: ctx.name, echo: userText }), " ");
      } else text = pad(echoText(ctx.name, userText), ".");
      said = text;
      output.push({
        id: ctx.id("msg"),
        type: "message",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", annotations: [], logprobs: [], text }],
      });
    }

    const now = Math.floor(Date.now() / 1000);
    const inputTokens = tokens(ctx.bodyLength);
    const reasoningTokens = output[0]?.type === "reasoning" ? 16 : 0;
    const outputTokens = tokens(said.length) + reasoningTokens;
    const reasoning = isObject(body.reasoning) ? body.reasoning : {};
    const response: Json = {
      id: ctx.id("resp"),
      object: "response",
      created_at: now,
      status: "completed",
      background: false,
      completed_at: now,
      error: null,
      incomplete_details: null,
      instructions: body.instructions ?? null,
      max_output_tokens: body.max_output_tokens ?? null,
      max_tool_calls: null,
      model: body.model,
      output,
      parallel_tool_calls: body.parallel_tool_calls ?? true,
      previous_response_id: previous ?? null,
      reasoning: { effort: reasoning.effort ?? null, summary: reasoning.summary ?? null },
      service_tier: "default",
      store: body.store ?? true,
      temperature: body.temperature ?? 1,
      text: { format, verbosity: textConfig.verbosity ?? "medium" },
      tool_choice: body.tool_choice ?? "auto",
      tools: Array.isArray(body.tools) ? body.tools : [],
      top_logprobs: 0,
      top_p: body.top_p ?? 1,
      truncation: "disabled",
      usage: {
        input_tokens: inputTokens,
        input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
        output_tokens: outputTokens,
        output_tokens_details: { reasoning_tokens: reasoningTokens },
        total_tokens: inputTokens + outputTokens,
      },
      user: null,
      metadata: isObject(body.metadata) ? body.metadata : {},
    };
    if (body.background === true) {
      // Queued until it is fetched (then it has finished) or cancelled.
      const queued = {
        ...response,
        status: "queued",
        background: true,
        completed_at: null,
        output: [],
        usage: null,
      };
      remember(this.#entries, response.id as string, this.#limit, {
        response: { ...response, background: true },
        input,
        queued,
      });
      return queued;
    }
    if (body.store !== false) {
      remember(this.#entries, response.id as string, this.#limit, { response, input });
    }
    return response;
  }

  get(id: string): Json | undefined {
    const entry = this.#entries.get(id);
    if (entry?.queued) entry.queued = undefined;
    return entry?.response;
  }

  /** Cancels a background response still queued; undefined when there is no such response. */
  cancel(id: string): Json | undefined {
    const entry = this.#entries.get(id);
    if (!entry) return undefined;
    if (entry.response.background !== true) {
      throw new Rejection(
        400,
        errorBody(
          "Only responses created with background set to true can be cancelled.",
          "invalid_request_error",
          null,
        ),
      );
    }
    if (entry.queued) {
      entry.response = { ...entry.queued, status: "cancelled" };
      entry.queued = undefined;
    }
    return entry.response;
  }

  delete(id: string): boolean {
    return this.#entries.delete(id);
  }

  /** The input items of a stored response as a `list`, honouring `order` (default desc), `limit` and `after`. */
  inputItems(id: string, search: URLSearchParams): Json | undefined {
    const entry = this.#entries.get(id);
    if (!entry) return undefined;
    let items = search.get("order") === "asc" ? entry.input : entry.input.toReversed();
    const after = search.get("after");
    if (after) items = items.slice(items.findIndex((item) => item.id === after) + 1);
    const limit = Math.min(100, Math.max(1, Number(search.get("limit")) || 20));
    const data = items.slice(0, limit);
    return {
      object: "list",
      data,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
      has_more: items.length > limit,
    };
  }

  clear(): void {
    this.#entries.clear();
    this.#blobs.clear();
  }
}

function remember<K, V>(into: Map<K, V> | Set<K>, key: K, limit: number, value?: V): void {
  if (into.size >= limit) {
    const oldest = into.keys().next();
    if (!oldest.done) into.delete(oldest.value);
  }
  if (into instanceof Map) into.set(key, value as V);
  else into.add(key);
}
